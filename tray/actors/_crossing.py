"""Crossings between a thread and an event loop: the one way to each side.

tray's loop runs in a background thread while user code runs in others (the driver's main
thread, a worker's, an async actor's asyncio loop). Every crossing goes through here:

- ``wake(token, fn, *args)``: from any thread, have a trio run call ``fn(*args)`` soon.
  A run that has finished is tolerated (False): whoever would have been woken is gone.
- ``wake_asyncio(loop, fn, *args)``: the same into an asyncio loop (async actors, and
  ``await ref`` from asyncio code); a closed loop is tolerated the same way.
- ``Signal``: a thread waits (with a timeout) until any thread or loop sets it: the
  lightest wake there is (a held lock), reset by the wait that consumes it.
- ``call(token, afn, *args)``: from a thread, run ``afn`` in the trio run and wait for
  its outcome.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    import asyncio


def wake(token: trio.lowlevel.TrioToken, fn: Callable[..., Any], *args: Any) -> bool:
    """From any thread: ``fn(*args)`` runs soon in ``token``'s trio run; False if that run is over."""
    try:
        token.run_sync_soon(fn, *args)
    except trio.RunFinishedError:
        return False
    return True


def wake_asyncio(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    """From any thread: ``fn(*args)`` runs soon in ``loop``; False if the loop is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True


def in_asyncio() -> bool:
    """Whether an asyncio loop runs in this thread (without importing asyncio where none was)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio._get_running_loop() is not None


def call(token: trio.lowlevel.TrioToken, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """From a thread that is not the run's: ``await afn(*args)`` in ``token``'s run; its outcome."""
    return trio.from_thread.run(afn, *args, trio_token=token)


class Signal:
    """A thread waits for it; any thread sets it. Setting twice before a wait is one wake,
    and a wait that returns True consumes it (an auto-reset event, built on a held lock
    because acquiring one is the cheapest way to block a thread)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        """Wake the waiter (now, or the next wait if none waits yet)."""
        try:
            self._lock.release()
        except RuntimeError:  # already set: one wake is enough
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (True) or ``timeout`` seconds pass (False)."""
        if timeout is None:
            return self._lock.acquire()
        return self._lock.acquire(timeout=max(timeout, 0.0))
