"""``Waiter``: a task parked in a queue until another hands it a value (or an error)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from outcome import Error, Value
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled


class Waiter:
    """Park the current task in ``queue`` with some ``data``; whoever serves the queue calls
    :meth:`hand` or :meth:`fail`. A cancelled waiter leaves the queue by itself."""

    __slots__ = ("task", "data")

    def __init__(self, data: Any = None) -> None:
        self.task: Any = current_task()
        self.data = data

    async def wait(self, queue: deque[Waiter], queued: Callable[[], Any] | None = None) -> Any:
        """Join ``queue`` and wait; ``queued()`` runs once this waiter is in it (it must not
        hand this waiter its value: the task is not parked yet)."""
        queue.append(self)
        if queued is not None:
            queued()

        def abort(_: Any) -> Abort:
            if self in queue:
                queue.remove(self)
            self.task = None
            return Abort.SUCCEEDED

        return await wait_task_rescheduled(abort)

    def hand(self, value: Any) -> bool:
        """Wake the waiter with ``value``; False if it gave up (it was cancelled)."""
        return self._wake(Value(value))

    def fail(self, exc: BaseException) -> bool:
        """Wake the waiter with ``exc`` raised; False if it gave up."""
        return self._wake(Error(exc))

    def _wake(self, result: Value | Error) -> bool:
        task, self.task = self.task, None
        if task is None:
            return False
        reschedule(task, result)
        return True
