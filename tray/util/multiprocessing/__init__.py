"""Ray's ``ray.util.multiprocessing``: the standard library's ``multiprocessing.Pool`` API,
its work done by actors on the cluster instead of local processes."""

from multiprocessing import TimeoutError

from .pool import AsyncResult, IMapIterator, Pool

__all__ = ["AsyncResult", "IMapIterator", "Pool", "TimeoutError"]
