"""Objects between nodes: chunked pulls, and the refs and messages to other nodes' stores.

A node that needs an object whose primary copy lives on another node makes a secondary
copy in its own store. It asks the source store for the file chunk by chunk: each reply
is a view of the source's mapping, sent out of band on the data connection without a
copy, and received straight into the new file's mapping at its offset (``ask_into``):
socket to shared memory, with no buffer in between. At most ``INFLIGHT`` chunks are
asked for at a time (credit-style flow control: a transfer holds a bounded amount of
memory, and a slow receiver slows the sender down). A chunk that arrives elsewhere (a
source in this very process) is written into place in a thread.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from ..actors import ActorRef
from ..exceptions import ObjectLostError

if TYPE_CHECKING:
    from ..actors import Actor

log = logging.getLogger("tray.store")

CHUNK = 4 << 20  # bytes a chunk request asks for (the transport's own chunk size: one piece each)
INFLIGHT = 4  # chunk requests in flight per pull
MAX_CHUNK = 64 << 20  # the largest chunk a store serves


def spans(total: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of each chunk of a ``total``-byte file, in order."""
    for offset in range(0, total, chunk):
        yield offset, min(chunk, total - offset)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


async def pull(read: Callable[[int, int], Awaitable[Any]], fd: int, total: int,
               chunk: int = CHUNK, inflight: int = INFLIGHT) -> None:
    """Fill the file ``fd`` with the ``total`` bytes that ``read(offset, length)`` returns
    chunk by chunk (None: it put them in place itself), ``inflight`` reads at a time. The
    first failure stops the others and is raised."""
    todo = spans(total, chunk)
    failure: list[BaseException] = []

    async def worker(scope: trio.CancelScope) -> None:
        try:
            for offset, length in todo:  # shared: each worker takes the next chunk
                got = await read(offset, length)
                if got is None:  # received in place
                    continue
                data = memoryview(got).cast("B")
                if data.nbytes != length:
                    raise ValueError(f"asked for {length:,} bytes at {offset:,}, got {data.nbytes:,}")
                await trio.to_thread.run_sync(_write_all, fd, data, offset)
                del data, got  # the received buffer goes now, not after the next chunk arrives
        except Exception as exc:  # noqa: BLE001 - the first failure of any kind is re-raised after the others stop
            if not failure:
                failure.append(exc)
            scope.cancel()

    async with trio.open_nursery() as nursery:
        for _ in range(min(inflight, -(-total // chunk))):
            nursery.start_soon(worker, nursery.cancel_scope)
    if failure:
        raise failure[0]


class Pull:
    """One pull of an object in progress; every fetch of the object meanwhile waits for it."""

    __slots__ = ("done", "error", "dropped")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None
        self.dropped = False  # the primary was freed meanwhile: the copy must not be kept

    async def wait(self) -> None:
        await self.done.wait()
        if self.error is not None:
            raise self.error


class Remotes:
    """Other nodes' stores as seen by one store: their refs, looked up once (and forgotten
    when they die), and messages to them, sent in order per destination and batched."""

    def __init__(self, actor: Actor, name: str) -> None:
        self.actor = actor
        self.name = name  # the stores' registered name
        self.refs: dict[str, ActorRef] = {}
        self.queues: dict[str | ActorRef, deque[tuple[str, list[str]]]] = {}

    async def at(self, node: str) -> ActorRef:
        """The store of the node at ``node``; ``ObjectLostError`` if none answers there."""
        ref = self.refs.get(node)
        if ref is None:
            try:
                ref = await self.actor.system.lookup_remote(node, self.name)
            except Exception as exc:  # noqa: BLE001 - any failure to reach it means the object is lost
                raise ObjectLostError(f"nothing answers there ({exc})") from None
            if ref is None:
                raise ObjectLostError("no object store runs there")
            self.refs[node] = ref
            self.actor.monitor(ref)
        return ref

    def down(self, ref: ActorRef) -> None:
        """A store we knew died."""
        for node, known in list(self.refs.items()):
            if known == ref:
                del self.refs[node]

    def forget(self, node: str) -> None:
        """Look the store of ``node`` up again next time (its connection broke)."""
        self.refs.pop(node, None)

    def tell(self, to: str | ActorRef, method: str, keys: list[str]) -> None:
        """Send ``method(keys)`` to the store ``to`` (a ref, or a node's address) soon,
        after what was sent to it before; a node that is gone is logged and skipped."""
        queue = self.queues.get(to)
        if queue is None:
            queue = self.queues[to] = deque()
            self.actor.start_soon(self._send, to, queue)
        if len(queue) > 1 and queue[-1][0] == method:  # queue[0] may be on its way already
            queue[-1][1].extend(keys)
        else:
            queue.append((method, list(keys)))

    async def _send(self, to: str | ActorRef, queue: deque[tuple[str, list[str]]]) -> None:
        try:
            while queue:
                method, keys = queue[0]
                try:
                    ref = to if isinstance(to, ActorRef) else await self.at(to)
                    await getattr(ref, method).tell(keys)
                except Exception as exc:  # noqa: BLE001 - its node is gone, and its objects with it
                    log.info("%s of %d object(s) not sent to %s: %s", method, len(keys), to, exc)
                queue.popleft()
        finally:
            del self.queues[to]
