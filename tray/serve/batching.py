"""``@serve.batch``: calls that arrive together run as one call on a list.

The decorated coroutine takes a list and returns a list of the same length; callers pass one
item and get their own result. A batch starts when ``max_batch_size`` items wait or
``batch_wait_timeout_s`` after its first item, whichever comes first.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any


class _Batcher:
    def __init__(self, fn: Callable[..., Any], owner: Any, max_batch_size: int, timeout_s: float) -> None:
        self.fn = fn
        self.owner = owner
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.queue: asyncio.Queue[tuple[Any, asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        fut = loop.create_future()
        self.queue.put_nowait((item, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.timeout_s
            while len(batch) < self.max_batch_size:
                left = deadline - loop.time()
                if left <= 0:
                    while len(batch) < self.max_batch_size and not self.queue.empty():
                        batch.append(self.queue.get_nowait())
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            items = [b[0] for b in batch]
            try:
                out = self.fn(self.owner, items) if self.owner is not None else self.fn(items)
                if inspect.isawaitable(out):
                    out = await out
                out = list(out)
                if len(out) != len(items):
                    raise ValueError(f"a @serve.batch function returned {len(out)} results for a batch of "
                                     f"{len(items)} (it must return one per input)")
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), value in zip(batch, out, strict=True):
                if not fut.done():
                    fut.set_result(value)


def batch(_func: Callable[..., Any] | None = None, *, max_batch_size: int = 10, batch_wait_timeout_s: float = 0.01,
          max_concurrent_batches: int = 1) -> Any:
    """Ray's ``@serve.batch`` on an async method (or function) that takes and returns lists."""
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
    if not isinstance(batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be a number >= 0, got {batch_wait_timeout_s!r}")
    if max_concurrent_batches != 1:
        raise ValueError("tray.serve runs one batch at a time per replica (max_concurrent_batches=1)")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_batcher_{fn.__name__}"

        if is_method:
            @functools.wraps(fn)
            async def method(self: Any, item: Any) -> Any:
                b = self.__dict__.get(attr)
                if b is None:
                    b = _Batcher(fn, self, max_batch_size, batch_wait_timeout_s)
                    self.__dict__[attr] = b
                return await b.submit(item)

            return method
        batcher: list[_Batcher] = []

        @functools.wraps(fn)
        async def func(item: Any) -> Any:
            if not batcher:
                batcher.append(_Batcher(fn, None, max_batch_size, batch_wait_timeout_s))
            return await batcher[0].submit(item)

        return func

    if _func is not None:
        return wrap(_func)
    return wrap
