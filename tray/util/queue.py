"""``Queue``: a FIFO queue shared by tasks, actors and the driver (Ray's ``ray.util.queue``).

The items live in an async actor holding an :class:`asyncio.Queue`, as Ray's do: a
blocked ``get`` or ``put`` is a coroutine waiting in that actor, so other calls go on
meanwhile (up to the actor's max_concurrency, 1000 by default). A ``Queue`` object is
only a handle on that actor: pickle it into tasks and actors, and every copy shares the
same items.
"""

from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable
from typing import Any

import tray

from .. import ObjectRef
from ..actor import ActorHandle

__all__ = ["Empty", "Full", "Queue"]


class Empty(_stdlib_queue.Empty):
    """Raised by ``get``/``get_nowait``/``get_nowait_batch`` when there are not enough items
    (a :class:`queue.Empty`, so code written for the standard library's queue catches it)."""


class Full(_stdlib_queue.Full):
    """Raised by ``put``/``put_nowait``/``put_nowait_batch`` when the items do not fit
    (a :class:`queue.Full`)."""


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


def _plain(exc: BaseException, kind: type[Exception]) -> Exception:
    """The actor's Empty/Full arrives wrapped as a RayTaskError with the actor's traceback;
    the caller gets a plain one: running out of items is not a remote failure."""
    return kind(*exc.args)


class Queue:
    """A first-in, first-out queue on tray, usable from any process of the session.

    Args:
        maxsize: the most items it holds; 0 (the default) means no limit.
        actor_options: options for the actor holding the items, as for
            ``ActorClass.options(...)`` (``num_cpus``, ``name``, ...).

    ``put``/``get`` block by default (up to ``timeout`` seconds); with ``block=False``
    they raise :class:`Full`/:class:`Empty` at once. There is no guarantee of order
    between several producers putting to a full queue, or several consumers getting
    from an empty one.
    """

    def __init__(self, maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> None:
        self.maxsize = maxsize
        self.actor: ActorHandle | None = (
            tray.remote(_QueueActor).options(**(actor_options or {})).remote(maxsize)
        )

    def _actor(self) -> ActorHandle:
        if self.actor is None:
            raise RuntimeError("this Queue was shut down (Queue.shutdown())")
        return self.actor

    # -------------------------------------------------------------- sizes

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """How many items the queue holds now."""
        return tray.get(self._actor().qsize.remote())

    def qsize(self) -> int:
        """How many items the queue holds now (same as :meth:`size`)."""
        return self.size()

    def empty(self) -> bool:
        """Whether the queue holds no item now."""
        return tray.get(self._actor().empty.remote())

    def full(self) -> bool:
        """Whether the queue holds ``maxsize`` items now (never, when unbounded)."""
        return tray.get(self._actor().full.remote())

    # ---------------------------------------------------------------- put

    def _put_ref(self, item: Any, block: bool, timeout: float | None) -> ObjectRef:
        if not block:
            return self._actor().put_nowait.remote(item)
        _check_timeout(timeout)
        return self._actor().put.remote(item, timeout)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; if the queue is full, wait for room (up to ``timeout`` seconds).

        Raises :class:`Full` if there is no room and ``block`` is False, or none came
        in time; ``ValueError`` if ``timeout`` is negative.
        """
        ref = self._put_ref(item, block, timeout)
        try:
            tray.get(ref)
        except Full as exc:
            raise _plain(exc, Full) from None

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """:meth:`put` for async code (asyncio or trio): waits without blocking the loop."""
        ref = self._put_ref(item, block, timeout)
        try:
            await ref
        except Full as exc:
            raise _plain(exc, Full) from None

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``: raises :class:`Full` at once if there is no room."""
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all of ``items``, in order, or none of them: raises :class:`Full` if they do not all fit."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        try:
            tray.get(self._actor().put_nowait_batch.remote(list(items)))
        except Full as exc:
            raise _plain(exc, Full) from None

    # ---------------------------------------------------------------- get

    def _get_ref(self, block: bool, timeout: float | None) -> ObjectRef:
        if not block:
            return self._actor().get_nowait.remote()
        _check_timeout(timeout)
        return self._actor().get.remote(timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item; if there is none, wait (up to ``timeout`` seconds).

        Raises :class:`Empty` if there is none and ``block`` is False, or none came in
        time; ``ValueError`` if ``timeout`` is negative.
        """
        ref = self._get_ref(block, timeout)
        try:
            return tray.get(ref)
        except Empty as exc:
            raise _plain(exc, Empty) from None

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """:meth:`get` for async code (asyncio or trio): waits without blocking the loop."""
        ref = self._get_ref(block, timeout)
        try:
            return await ref
        except Empty as exc:
            raise _plain(exc, Empty) from None

    def get_nowait(self) -> Any:
        """``get(block=False)``: raises :class:`Empty` at once if there is no item."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Remove and return the ``num_items`` oldest items, in order, or none of them:
        raises :class:`Empty` if there are fewer."""
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        try:
            return tray.get(self._actor().get_nowait_batch.remote(num_items))
        except Empty as exc:
            raise _plain(exc, Empty) from None

    # ------------------------------------------------------------ the end

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """End the actor holding the items (its resources are released); items still in it are lost.

        Unless ``force``, the actor ends gracefully (Ray's ``__ray_terminate__``: after the
        calls already sent to it), killed if that takes over ``grace_period_s`` seconds.
        Calls still blocked in it fail with ActorDiedError. Copies of this Queue elsewhere
        stop working too.
        """
        actor = self.actor
        if actor is None:
            return
        if force:
            tray.kill(actor, no_restart=True)
        else:
            _, not_done = tray.wait([actor.__ray_terminate__.remote()], timeout=grace_period_s)
            if not_done:
                tray.kill(actor, no_restart=True)
        self.actor = None


class _QueueActor:
    """The actor holding the items. Its async methods make tray run it on an asyncio
    loop, so many gets and puts can wait in it at once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except TimeoutError:
            raise Full(f"no room in the queue (maxsize {self.maxsize}) within {timeout} s") from None

    async def get(self, timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise Empty(f"no item in the queue within {timeout} s") from None

    def put_nowait(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Full(f"the queue is full (maxsize {self.maxsize})") from None

    def put_nowait_batch(self, items: list[Any]) -> None:
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            raise Full(f"Cannot add {len(items)} items to queue of size {self.queue.qsize()}"
                       f" and maxsize {self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)

    def get_nowait(self) -> Any:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            raise Empty("the queue is empty") from None

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        if num_items > self.queue.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size {self.queue.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]
