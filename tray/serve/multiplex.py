"""``@serve.multiplexed``: a replica keeps the last few models it loaded, by model id.

The decorated ``async def get_model(self, model_id)`` loads a model; the wrapper caches up to
``max_num_models_per_replica`` of them (least recently used goes first) and loads each id once
even when requests for it arrive together. Routers send a model id's requests to the replica
that served it last when it has room.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


def multiplexed(_func: Callable[..., Any] | None = None, *, max_num_models_per_replica: int = 3) -> Any:
    if not isinstance(max_num_models_per_replica, int) or (max_num_models_per_replica < 1 and
                                                           max_num_models_per_replica != -1):
        raise ValueError(f"max_num_models_per_replica must be an int >= 1 (or -1: no limit), "
                         f"got {max_num_models_per_replica!r}")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("@serve.multiplexed decorates an async function: async def get_model(self, model_id)")
        attr = f"__serve_models_{fn.__name__}"

        @functools.wraps(fn)
        async def load(self: Any, model_id: str) -> Any:
            if not isinstance(model_id, str) or not model_id:
                raise ValueError(f"a multiplexed model id must be a non-empty string, got {model_id!r}")
            cache: OrderedDict[str, asyncio.Future] = self.__dict__.setdefault(attr, OrderedDict())
            fut = cache.get(model_id)
            if fut is None:
                fut = asyncio.get_running_loop().create_future()
                cache[model_id] = fut
                try:
                    fut.set_result(await fn(self, model_id))
                except BaseException as exc:
                    del cache[model_id]
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: the caller gets it below
                    raise
                while max_num_models_per_replica != -1 and len(cache) > max_num_models_per_replica:
                    _old, evicted = cache.popitem(last=False)
                    model = evicted.result() if evicted.done() and not evicted.exception() else None
                    if model is not None and hasattr(model, "__del__"):
                        try:
                            model.__del__()
                        except Exception:  # noqa: BLE001
                            pass
            else:
                cache.move_to_end(model_id)
            return await asyncio.shield(fut)

        return load

    if _func is not None:
        return wrap(_func)
    return wrap
