"""Streaming generators (``num_returns="streaming"``): refs to a task's items as it yields them.

The worker sends each item to the owner as soon as the generator yields it; the owner
stores it as an object of its own and hands its ref to whoever iterates. An exception
in the generator becomes one last item whose ``get`` raises it, as in Ray.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from ..actors._crossing import wake, wake_asyncio
from ._objects import ObjectRef

if TYPE_CHECKING:
    from ._objects import ObjectTable

STREAMING = -1  # num_returns of a streaming task, internally


class Stream:
    """The owner's record of one streaming task: the items so far, and whether it ended."""

    def __init__(self, table: ObjectTable, task_id: str) -> None:
        self.table = table
        self.task_id = task_id
        self.items: list[ObjectRef] = []
        self.finished = False
        self.expected: int | None = None  # how many items the task yielded, once it says
        self.error: BaseException | None = None  # what ended it: raised after the items, or the task's failure
        self.changed = threading.Condition()
        self.async_waiters: list[Any] = []
        self.completion: ObjectRef | None = None  # made on first ask (ObjectRefGenerator.completed)

    def item_id(self, index: int) -> str:
        return f"{self.task_id}~{index}"

    def add(self, index: int, blob: bytes | None, error: BaseException | None = None) -> None:
        """Item ``index`` arrived (a retried task sends its first items again: ignored)."""
        if index != len(self.items) or self.finished:
            return
        oid = self.item_id(index)
        self.table.add_owned(oid)
        ref = ObjectRef(oid, None, self.table)
        self.table.resolve(oid, blob, error)
        self._publish(ref)
        if self.expected is not None and len(self.items) == self.expected:
            self.finish(self.error)

    def expect(self, count: int, error: BaseException | None) -> None:
        """The task ended after yielding ``count`` items (some may still be on their way),
        then raising ``error`` if not None."""
        self.expected = count
        self.error = error
        if len(self.items) >= count:
            self.finish(error)

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.error = error
        if error is not None:  # the failure is delivered as the last item
            self.add(len(self.items), None, error)
        with self.changed:
            self.finished = True
            completion = self.completion
            self.changed.notify_all()
        if completion is not None:
            self._complete(completion._id)
        self._wake_async()

    def completed(self) -> ObjectRef:
        """A ref that is ready once the task has ended (its get raises what ended it, if anything)."""
        with self.changed:
            if self.completion is None:
                oid = f"{self.task_id}~done"
                self.table.add_owned(oid)
                self.completion = ObjectRef(oid, None, self.table)
                if self.finished:
                    self._complete(oid)
            return self.completion

    def _complete(self, oid: str) -> None:
        """The task ran to its end (what its generator raised is an item, as in Ray), or it
        failed before (its worker or actor died, its arguments failed): then ``get`` raises."""
        error = self.error if self.expected is None else None
        self.table.resolve(oid, None if error is not None else self.table.encode(None, oid), error)

    def _publish(self, ref: ObjectRef) -> None:
        with self.changed:
            self.items.append(ref)
            self.changed.notify_all()
        self._wake_async()

    def _wake_async(self) -> None:
        waiters, self.async_waiters = self.async_waiters, []
        for waiter in waiters:
            waiter()


class ObjectRefGenerator:
    """What a streaming task returns: iterate it (``for ref in gen``, or ``async for``)
    to get an ObjectRef per item, as soon as the task yields it."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._next = 0

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef:
        return self._next_sync(None)

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        """The next item's ref, waiting at most ``timeout_s`` seconds (None or -1: for ever), else
        ``ObjectRef.nil()``; StopIteration after the last. Ray's name and behaviour."""
        s = self._stream
        wait = None if timeout_s is None or timeout_s < 0 else timeout_s
        with s.changed:
            if not s.changed.wait_for(lambda: len(s.items) > self._next or s.finished, wait):
                return ObjectRef.nil()
            if len(s.items) > self._next:
                self._next += 1
                return s.items[self._next - 1]
        raise StopIteration

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef:
        import sniffio

        s = self._stream
        while len(s.items) <= self._next and not s.finished:
            if sniffio.current_async_library() == "asyncio":
                import asyncio

                loop = asyncio.get_running_loop()
                fut = loop.create_future()
                s.async_waiters.append(partial(wake_asyncio, loop, _settle, fut))
                if len(s.items) <= self._next and not s.finished:
                    await fut
            else:
                import trio

                event = trio.Event()
                token = trio.lowlevel.current_trio_token()
                s.async_waiters.append(partial(wake, token, event.set))
                if len(s.items) <= self._next and not s.finished:
                    await event.wait()
        if len(s.items) > self._next:
            self._next += 1
            return s.items[self._next - 1]
        raise StopAsyncIteration

    def ready_or_done(self) -> bool:
        """Would ``next`` return at once: its next item is here, or it has ended (``tray.wait``'s test)."""
        s = self._stream
        return len(s.items) > self._next or s.finished

    def next_ready(self) -> bool:
        """Whether ``next(gen)`` returns at once with a ref whose value is here (False once it
        would raise StopIteration: see :meth:`is_finished`). Returns at once."""
        return len(self._stream.items) > self._next

    def is_finished(self) -> bool:
        """Whether the task has ended and every item was taken (``next`` raises StopIteration)."""
        s = self._stream
        return s.finished and len(s.items) <= self._next

    def completed(self) -> ObjectRef:
        """A ref that is ready when the task has ended; its ``get`` raises what made it fail (its
        worker's or actor's death; an exception of the generator's is an item). Returns at once."""
        return self._stream.completed()

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._stream.task_id}, {len(self._stream.items)} items so far)"


def _settle(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)
