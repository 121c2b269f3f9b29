"""Synchronising a test with a cluster without sleeping a guessed time (Ray's helpers of the
same names): poll a condition until it holds, or let the test hold tasks at a barrier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for_condition(condition: Callable[..., Any], timeout: float = 10, retry_interval_ms: float = 100,
                       raise_exceptions: bool = False, **kwargs: Any) -> None:
    """Call ``condition(**kwargs)`` until it returns truthy; raise RuntimeError after ``timeout``
    seconds, naming the last exception it raised (raised at once if ``raise_exceptions``)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if condition(**kwargs):
                return
        except Exception as exc:
            if raise_exceptions:
                raise
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(retry_interval_ms / 1000)
    message = f"the condition {getattr(condition, '__name__', condition)!r} was not met within {timeout} s"
    raise RuntimeError(message + (f"; it last raised {last!r}" if last is not None else "")) from last


class SignalActor:
    """A barrier for tasks (use as ``tray.remote(SignalActor).remote()``, or
    :func:`signal_actor`): ``wait`` blocks until someone calls ``send``; ``send(clear=True)``
    releases the waiters and lowers the flag again."""

    def __init__(self) -> None:
        self.ready_event = asyncio.Event()
        self.num_waiters = 0

    async def send(self, clear: bool = False) -> None:
        self.ready_event.set()
        if clear:
            await asyncio.sleep(0)  # let the released waiters run before the flag drops
            self.ready_event.clear()

    async def wait(self, should_wait: bool = True) -> None:
        if should_wait:
            self.num_waiters += 1
            try:
                await self.ready_event.wait()
            finally:
                self.num_waiters -= 1

    async def cur_num_waiters(self) -> int:
        return self.num_waiters


def signal_actor(**options: Any) -> Any:
    """A new :class:`SignalActor` handle (no CPU asked, many callers at once by default)."""
    import tray

    options = {"num_cpus": 0, "max_concurrency": 1000, **options}
    return tray.remote(SignalActor).options(**options).remote()
