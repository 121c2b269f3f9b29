"""The ``Actor`` base class: an actor's protocol is its public methods."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._cell import Cell
    from ._ref import ActorRef
    from ._system import ActorSystem


class Actor:
    """Subclass this; spawn it with ``await system.spawn(MyActor, *args)``.

    Public methods (sync or async) are the messages the actor understands. The hooks
    below are not messages: the runtime calls them. Set ``trap_exits = True`` to get
    ``on_exit`` for a linked actor's exit instead of exiting with it (supervisors do).
    """

    trap_exits: ClassVar[bool] = False
    _tray_cell: Cell

    def __getattr__(self, name: str) -> Any:
        if name == "_tray_cell":
            raise RuntimeError(
                f"this {type(self).__name__} was constructed directly and is not running as an actor;"
                f" start it with `await system.spawn({type(self).__name__}, ...)`"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def on_start(self) -> Any:
        """Called once in the actor before its first message (may be async)."""

    def on_stop(self) -> Any:
        """Called when the actor stops or crashes, not when it is killed (may be async)."""

    def on_restart(self, exc: BaseException) -> Any:
        """Called instead of ``on_start`` on an incarnation that replaces a crashed one."""
        return self.on_start()

    def on_down(self, ref: ActorRef, reason: Any) -> Any:
        """A monitored actor is gone, with ``reason`` ("normal", "killed", an exception...)."""

    def on_exit(self, ref: ActorRef, reason: Any) -> Any:
        """A linked actor exited (called only when ``trap_exits`` is true)."""

    @property
    def ref(self) -> ActorRef:
        """This actor's own reference (usable already in ``__init__``)."""
        return self._tray_cell.ref

    @property
    def system(self) -> ActorSystem:
        """The system hosting this actor."""
        return self._tray_cell.system

    def monitor(self, ref: ActorRef) -> None:
        """Get ``on_down(ref, reason)`` once ``ref`` is gone (at once if it already is)."""
        self._tray_cell.monitor(ref)

    def demonitor(self, ref: ActorRef) -> None:
        """Stop monitoring ``ref``."""
        self._tray_cell.demonitor(ref)

    def link(self, ref: ActorRef) -> None:
        """Tie this actor's fate to ``ref``'s: if either exits abnormally, so does the other."""
        self._tray_cell.link(ref)

    def unlink(self, ref: ActorRef) -> None:
        """Undo :meth:`link`."""
        self._tray_cell.unlink(ref)

    def start_soon(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``afn(*args)`` in the background for as long as this actor lives.

        It is cancelled when the actor stops; if it raises, the actor crashes with that
        exception (its supervisor decides what follows). Timers, readers and pollers go here.
        """
        self._tray_cell.start_soon(afn, *args)

    async def stop(self, reason: Any = "normal") -> None:
        """Stop this actor once the current message is handled (queued ones become dead letters)."""
        self._tray_cell.post_system(("stop", reason))


_protocols: dict[type, dict[str, bool]] = {}


def protocol(cls: type) -> dict[str, bool]:
    """Map each message name of ``cls`` to whether its handler is async (cached per class)."""
    proto = _protocols.get(cls)
    if proto is None:
        base = set(dir(Actor))
        proto = {
            name: inspect.iscoroutinefunction(member)
            for name in dir(cls)
            if not name.startswith("_") and name not in base and callable(member := getattr(cls, name))
        }
        _protocols[cls] = proto
    return proto
