"""Proxies that make a remote actor look local, and local actors answer remote callers.

:class:`RemoteCell` has the interface of the kernel's ``Cell`` as seen through an
``ActorRef`` (``ask``/``tell``/``tell_nowait``, ``reason``, ``watchers``, ``links``,
``post_system``, ``kill``, ``done``), so a ref works the same wherever its actor lives.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from outcome import Error, Value
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from ..actors import ActorRef
from ..exceptions import ActorDiedError, AskTimeoutError, MailboxFull
from ._codec import Kind, dumps, encode

if TYPE_CHECKING:
    from ._peer import Peer

log = logging.getLogger("tray.transport")

YIELD_BYTES = 256 * 1024  # queued bytes beyond which an (async) tell lets the writer run


class _Waiter:
    """A pending ask: the task to reschedule when its reply (or its peer's death) comes."""

    __slots__ = ("task", "corr", "peer", "into")

    def __init__(self, task: trio.lowlevel.Task, corr: int, peer: Peer, into: list[Any] | None = None) -> None:
        self.task: trio.lowlevel.Task | None = task
        self.corr = corr
        self.peer = peer
        self.into = into  # where the reply's out-of-band buffers may be received (ask_into)

    def abort(self, _raise_cancel: Any) -> Abort:
        self.task = None
        self.peer.pending.pop(self.corr, None)
        return Abort.SUCCEEDED

    def resolve(self, result: Value | Error) -> None:
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, result)


class _NotifySet(set):
    """A remote actor's local watchers or links: the first one makes us watch the actor."""

    __slots__ = ("owner",)

    def __init__(self, owner: RemoteCell) -> None:
        super().__init__()
        self.owner = owner

    def add(self, item: Any) -> None:
        super().add(item)
        self.owner._watch()


class RemoteCell:
    """Stands in, in this system, for an actor hosted by a peer system."""

    def __init__(
        self, peer: Peer, uid: str, cls_name: str, name: str | None, proto: dict[str, bool], address: str | None
    ) -> None:
        self.peer = peer
        self.uid = uid
        self.address = address
        self.reason: Any = None
        self.watchers: set[Any] = _NotifySet(self)
        self.links: set[Any] = _NotifySet(self)
        self.done = trio.Event()
        self._watching = False
        self.ref = ActorRef(uid, cls_name, name, proto, self)

    def __repr__(self) -> str:
        return f"<RemoteCell {self.uid} at {self.address or self.peer.uid}>"

    # ---------------------------------------------------------------- sending

    def _dead(self, method: str) -> ActorDiedError:
        return ActorDiedError(f"{self.ref!r} is dead ({self.reason}); {method} not handled")

    async def ask(self, method: str, args: tuple, kwargs: dict, timeout: float | None, into: Any = None) -> Any:
        if timeout is not None:
            with trio.move_on_after(timeout):
                return await self.ask(method, args, kwargs, None, into)
            raise AskTimeoutError(f"{self.ref!r}.{method} did not reply within {timeout} s")
        peer = self.peer
        if self.reason is not None:
            raise self._dead(method)
        payload, bufs = dumps((args, kwargs))
        corr = peer.next_corr()
        waiter = _Waiter(current_task(), corr, peer, into)
        peer.pending[corr] = waiter
        peer.post_message(Kind.ASK, corr, self.uid, method, payload, bufs)
        return await wait_task_rescheduled(waiter.abort)

    async def tell(self, method: str, args: tuple, kwargs: dict) -> None:
        if self.reason is not None:
            raise self._dead(method)
        payload, bufs = dumps((args, kwargs))
        peer = self.peer
        peer.post_message(Kind.TELL, 0, self.uid, method, payload, bufs)
        if peer.out_bytes > YIELD_BYTES:  # let the writer run; wait if it is far behind
            if peer.out_bytes > peer.config.high_water:
                await peer.wait_drained()
            else:
                await trio.lowlevel.checkpoint()

    def tell_nowait(self, method: str, args: tuple, kwargs: dict) -> None:
        if self.reason is not None:
            raise self._dead(method)
        peer = self.peer
        if peer.out_bytes > peer.config.high_water:
            raise MailboxFull(f"the connection to {self.ref!r} is backed up; {method} not sent")
        payload, bufs = dumps((args, kwargs))
        peer.post_message(Kind.TELL, 0, self.uid, method, payload, bufs)

    def tell_from_thread(self, method: str, args: tuple, kwargs: dict) -> bool:
        """See ``MethodRef.tell_from_thread``: small messages only; big buffers take the
        loop's path (the data connection, flow control)."""
        if self.reason is not None:
            return False
        payload, bufs = dumps((args, kwargs))
        if bufs:
            return False
        return self.peer.send_from_thread(encode(Kind.TELL, 0, self.uid, method, payload, bufs, 0)[0])

    # ------------------------------------------------------ system messages

    def post_system(self, msg: tuple) -> None:
        """Forward a system message (stop, exit, down) to the remote actor."""
        if self.reason is not None:
            return
        if msg[0] == "stop":
            self._watch()  # so that ``done`` is set when it is gone
        self.peer.post_system_msg(self.uid, msg)

    def kill(self) -> None:
        if self.reason is None:
            self._watch()
            self.peer.post_system_msg(self.uid, ("kill",))

    def _watch(self) -> None:
        if not self._watching and self.reason is None:
            self._watching = True
            self.peer.watched[self.uid] = self
            self.peer.post_message(Kind.WATCH, 0, self.uid, None, None, [])

    def died(self, reason: Any) -> None:
        """The remote actor is gone: tell its local watchers and links, as the kernel does."""
        if self.reason is not None:
            return
        self.reason = reason
        self.peer.watched.pop(self.uid, None)
        for w in list(self.watchers):
            w.post_system(("down", self.ref, reason))
        for other in list(self.links):
            other.links.discard(self)
            other.post_system(("exit", self.ref, reason))
        set.clear(self.watchers)
        set.clear(self.links)
        self.done.set()


class RemoteReply:
    """Where a local actor's reply to a remote ask goes: straight onto the peer's queue."""

    __slots__ = ("peer", "corr")

    def __init__(self, peer: Peer, corr: int) -> None:
        self.peer = peer
        self.corr = corr

    def send(self, result: Value | Error) -> None:
        self.peer.send_reply(self.corr, result)


class PeerWatcher:
    """Sits in local actors' ``watchers`` for a peer that watches them; forwards their death."""

    __slots__ = ("peer", "__weakref__")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def post_system(self, msg: tuple) -> None:
        if msg[0] in ("down", "exit"):
            self.peer.send_died(msg[1]._uid, msg[2])
