"""``ActorRef``: the only way to talk to an actor, wherever it lives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import RayError

if TYPE_CHECKING:
    from ._cell import Cell


class ActorRef:
    """A handle on an actor: ``await ref.method.ask(*args)``, ``await ref.method.tell(*args)``.

    Hashable and comparable by the actor's identity, printable, and picklable (an
    unpickled ref finds its actor again through the system that hosts it).
    """

    __slots__ = ("_uid", "_cls_name", "_name", "_cell", "_proto", "_methods", "__weakref__")

    def __init__(self, uid: str, cls_name: str, name: str | None, proto: dict[str, bool], cell: Cell | Any) -> None:
        self._uid = uid
        self._cls_name = cls_name
        self._name = name
        self._proto = proto
        self._cell = cell
        self._methods: dict[str, MethodRef] = {}

    @property
    def name(self) -> str | None:
        """The registered name, if the actor was spawned with one."""
        return self._name

    @property
    def actor_id(self) -> str:
        """Globally unique id of this actor incarnation."""
        return self._uid

    @property
    def alive(self) -> bool:
        """False once this system knows the actor is gone (it stopped, or the connection to
        its system was lost); True may be stale by a message's flight time."""
        return getattr(self._cell, "reason", None) is None

    def __getattr__(self, method: str) -> MethodRef:
        m = self._methods.get(method)
        if m is None:
            if method not in self._proto:
                raise AttributeError(
                    f"actor class {self._cls_name!r} has no public method {method!r}"
                    f" (its methods: {', '.join(sorted(self._proto)) or 'none'})"
                )
            m = self._methods[method] = MethodRef(self, method)
        return m

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._uid == self._uid

    def __hash__(self) -> int:
        return hash(self._uid)

    def __repr__(self) -> str:
        num = self._uid.rpartition(":")[2]
        named = f" {self._name!r}" if self._name is not None else ""
        return f"ActorRef({self._cls_name}#{num}{named})"

    def __reduce__(self) -> tuple[Any, ...]:
        from ._system import resolve_ref

        cell = self._cell  # a local cell's system, or a remote proxy, knows the address
        address = getattr(cell, "address", None) or getattr(getattr(cell, "system", None), "address", None)
        return (resolve_ref, (self._uid, self._cls_name, self._name, tuple(sorted(self._proto.items())), address))


class MethodRef:
    """``ref.method``: the ways to send that message."""

    __slots__ = ("_ref", "_method")

    def __init__(self, ref: ActorRef, method: str) -> None:
        self._ref = ref
        self._method = method

    async def ask(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Send and wait for the reply; the handler's exception is raised here.

        Raises :class:`~tray.exceptions.AskTimeoutError` after ``timeout`` seconds and
        :class:`~tray.exceptions.ActorDiedError` if the actor is or goes away first.
        """
        return await self._ref._cell.ask(self._method, args, kwargs, timeout)

    async def ask_into(self, into: list[Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """``ask``, letting the reply's large out-of-band buffers (a memoryview it returns, say)
        be received straight into ``into`` (writable buffers of exactly their sizes, in order)
        when the actor is remote: the bytes land in your memory (a mapped file) without a
        copy. A local actor's reply is its own object: check ``reply.obj`` and copy if need be."""
        return await self._ref._cell.ask(self._method, args, kwargs, timeout, into)

    async def tell(self, *args: Any, **kwargs: Any) -> None:
        """Send without waiting for a reply; waits only while a "block" mailbox is full."""
        await self._ref._cell.tell(self._method, args, kwargs)

    def tell_nowait(self, *args: Any, **kwargs: Any) -> None:
        """Send now; raises :class:`~tray.exceptions.MailboxFull` where ``tell`` would wait."""
        self._ref._cell.tell_nowait(self._method, args, kwargs)

    def try_tell(self, *args: Any, **kwargs: Any) -> bool:
        """Send now if the actor lives and has room; False (never an exception) if not.

        Erlang's ``!``: for notes to another process that matter only while it lives (a
        lease given back, a view pushed); a dead recipient needs nothing.
        """
        try:
            self._ref._cell.tell_nowait(self._method, args, kwargs)
        except RayError:
            return False
        return True

    def tell_from_thread(self, *args: Any, **kwargs: Any) -> bool:
        """From a thread that is not the loop's: send to a remote actor now, writing to its
        connection from this thread when the connection is idle, without waking the loop.

        False, having sent nothing, when it cannot (a local actor, a busy or lost
        connection, big buffers): send through the loop instead. Order is kept with the
        loop's own sends; with what this thread handed the loop earlier, it is the
        caller's part (send this way only once those have gone).
        """
        send = getattr(self._ref._cell, "tell_from_thread", None)
        return send is not None and send(self._method, args, kwargs)

    def __repr__(self) -> str:
        return f"{self._ref!r}.{self._method}"
