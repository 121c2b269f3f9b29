"""``Pool``: the standard library's ``multiprocessing.Pool`` with actors for processes.

Each of the pool's ``processes`` is an actor that ran the ``initializer`` once; work goes to
them in chunks (one actor call per chunk, the actors taken in turn), and every result comes
back as the standard library's would: ``AsyncResult.get`` raises what the function raised,
``imap`` yields in order, ``imap_unordered`` as chunks finish. ``imap`` reads its iterable
as it goes, keeping a bounded number of chunks in flight, so it takes endless iterables.
An actor that has run ``maxtasksperchild`` chunks is replaced (the old one ends once its
calls are done: no handle to it is left). The pool starts tray (or joins ``ray_address``)
when this process has not yet.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing import TimeoutError as MPTimeoutError
from typing import Any

import tray
from tray.exceptions import GetTimeoutError

Item = tuple[tuple, dict]  # one call's (args, kwargs)

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
AHEAD_PER_PROCESS = 2  # chunks in flight per process while an imap reads its iterable
PRUNE_AT = 256  # outstanding refs kept for join() before the finished ones are dropped


class _PoolActor:
    """One of the pool's processes."""

    def __init__(self, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
        if initializer is not None:
            initializer(*initargs)

    def run_batch(self, func: Callable[..., Any], batch: list[Item]) -> list[Any]:
        return [func(*args, **kwargs) for args, kwargs in batch]


PoolActor: Any = tray.remote(num_cpus=1)(_PoolActor)


class AsyncResult:
    """A result to come (``apply_async``, ``map_async``...), as ``multiprocessing``'s."""

    def __init__(self, refs: list[Any], single: bool, callback: Callable[[Any], Any] | None = None,
                 error_callback: Callable[[BaseException], Any] | None = None) -> None:
        self._refs, self._single = refs, single
        self._lock = threading.Lock()
        self._settled = False
        self._value: Any = None
        self._error: BaseException | None = None
        if callback is not None or error_callback is not None:
            threading.Thread(target=self._call_back, args=(callback, error_callback), daemon=True,
                             name="tray-pool-callback").start()

    def _settle(self, timeout: float | None) -> None:
        with self._lock:
            if self._settled:
                return
            try:
                chunks = tray.get(self._refs, timeout=timeout)
            except GetTimeoutError:
                raise MPTimeoutError(f"the result was not ready within {timeout} s") from None
            except Exception as exc:  # noqa: BLE001 - what the function raised is the result's error
                self._error = exc
            else:
                values = [v for chunk in chunks for v in chunk]
                self._value = values[0] if self._single else values
            self._settled = True

    def _call_back(self, callback: Callable[[Any], Any] | None,
                   error_callback: Callable[[BaseException], Any] | None) -> None:
        self._settle(None)
        if self._error is None and callback is not None:
            callback(self._value)
        elif self._error is not None and error_callback is not None:
            error_callback(self._error)

    def get(self, timeout: float | None = None) -> Any:
        """The result, waiting at most ``timeout`` seconds (then ``multiprocessing.TimeoutError``);
        raises what the function raised."""
        self._settle(timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is ready, or ``timeout`` seconds."""
        if self._refs:
            tray.wait(self._refs, num_returns=len(self._refs), timeout=timeout)

    def ready(self) -> bool:
        if self._settled or not self._refs:
            return True
        done, _ = tray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        return len(done) == len(self._refs)

    def successful(self) -> bool:
        """Whether the call completed without raising; ValueError if it is not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} is not ready")
        self._settle(None)
        return self._error is None


class IMapIterator:
    """The iterator ``imap`` and ``imap_unordered`` return; ``next(timeout)`` as the standard
    library's (``multiprocessing.TimeoutError`` when no result comes in time)."""

    def __init__(self, pool: Pool, func: Callable[..., Any], chunks: Iterator[list[Item]], ordered: bool) -> None:
        self._pool, self._func, self._chunks, self._ordered = pool, func, chunks, ordered
        self._inflight: deque[Any] = deque()
        self._ready: deque[Any] = deque()
        self._exhausted = False
        self._fill()

    def _fill(self) -> None:
        while not self._exhausted and len(self._inflight) < self._pool._processes * AHEAD_PER_PROCESS:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._inflight.append(self._pool._submit(self._func, chunk))

    def __iter__(self) -> IMapIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        while not self._ready:
            if not self._inflight:
                raise StopIteration
            if self._ordered:
                ref = self._inflight[0]
                if not tray.wait([ref], timeout=timeout)[0]:
                    raise MPTimeoutError(f"no result within {timeout} s")
                self._inflight.popleft()
            else:
                done, _ = tray.wait(list(self._inflight), num_returns=1, timeout=timeout)
                if not done:
                    raise MPTimeoutError(f"no result within {timeout} s")
                ref = done[0]
                self._inflight.remove(ref)
            self._ready.extend(tray.get(ref))  # raises what the function raised
            self._fill()
        return self._ready.popleft()


class Pool:
    """``multiprocessing.Pool(processes, initializer, initargs, maxtasksperchild)`` on the
    cluster; ``ray_address`` joins a running one, ``ray_remote_args`` are the actors' options
    (default ``num_cpus=1``). ``context`` is accepted for the standard signature: actors, not
    local processes, do the work (Ray's rule too)."""

    def __init__(self, processes: int | None = None, initializer: Callable[..., Any] | None = None,
                 initargs: Iterable[Any] | None = None, maxtasksperchild: int | None = None,
                 context: Any = None, ray_address: str | None = None,
                 ray_remote_args: dict[str, Any] | None = None) -> None:
        del context
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ValueError(f"Processes in the pool must be >0, got {processes!r}")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int) or maxtasksperchild < 1):
            raise ValueError(f"maxtasksperchild must be a positive int or None, got {maxtasksperchild!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if not tray.is_initialized():
            tray.init(address=ray_address)
        self._processes = processes or max(1, int(tray.cluster_resources().get("CPU", 1)))
        self._initializer, self._initargs = initializer, tuple(initargs or ())
        self._maxtasks = maxtasksperchild
        self._actor_class = PoolActor.options(**ray_remote_args) if ray_remote_args else PoolActor
        self._actors = [self._new_actor() for _ in range(self._processes)]
        self._runs = [0] * self._processes  # chunks sent to each actor
        self._turn = itertools.cycle(range(self._processes))
        self._state = RUN
        self._lock = threading.Lock()
        self._outstanding: list[Any] = []  # refs join() waits for

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self._initializer, self._initargs)

    def _submit(self, func: Callable[..., Any], chunk: list[Item]) -> Any:
        with self._lock:
            if self._state != RUN:
                raise ValueError("Pool not running")
            i = next(self._turn)
            if self._maxtasks is not None and self._runs[i] >= self._maxtasks:
                self._actors[i], self._runs[i] = self._new_actor(), 0  # the old one ends after its calls
            self._runs[i] += 1
            ref = self._actors[i].run_batch.remote(func, chunk)
            if len(self._outstanding) >= PRUNE_AT:  # forget what is done, now and then
                self._outstanding = tray.wait(self._outstanding, num_returns=len(self._outstanding), timeout=0)[1]
            self._outstanding.append(ref)
            return ref

    def _chunksize(self, n: int, chunksize: int | None) -> int:
        if chunksize is not None:
            if not isinstance(chunksize, int) or chunksize < 1:
                raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
            return chunksize
        size, extra = divmod(n, self._processes * 4)  # the standard library's rule
        return max(1, size + bool(extra))

    def _map(self, func: Callable[..., Any], items: list[Item], chunksize: int | None,
             callback: Callable[[Any], Any] | None = None,
             error_callback: Callable[[BaseException], Any] | None = None) -> AsyncResult:
        if self._state != RUN:
            raise ValueError("Pool not running")
        size = self._chunksize(len(items), chunksize)
        refs = [self._submit(func, items[i:i + size]) for i in range(0, len(items), size)]
        return AsyncResult(refs, False, callback, error_callback)

    # ------------------------------------------------------------ the standard API

    def apply(self, func: Callable[..., Any], args: Iterable[Any] = (), kwds: dict[str, Any] | None = None) -> Any:
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func: Callable[..., Any], args: Iterable[Any] = (), kwds: dict[str, Any] | None = None,
                    callback: Callable[[Any], Any] | None = None,
                    error_callback: Callable[[BaseException], Any] | None = None) -> AsyncResult:
        ref = self._submit(func, [(tuple(args), dict(kwds or {}))])
        return AsyncResult([ref], True, callback, error_callback)

    def map(self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int | None = None) -> list[Any]:
        return self.map_async(func, iterable, chunksize).get()

    def map_async(self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int | None = None,
                  callback: Callable[[Any], Any] | None = None,
                  error_callback: Callable[[BaseException], Any] | None = None) -> AsyncResult:
        return self._map(func, [((x,), {}) for x in iterable], chunksize, callback, error_callback)

    def starmap(self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]],
                chunksize: int | None = None) -> list[Any]:
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(self, func: Callable[..., Any], iterable: Iterable[Iterable[Any]], chunksize: int | None = None,
                      callback: Callable[[Any], Any] | None = None,
                      error_callback: Callable[[BaseException], Any] | None = None) -> AsyncResult:
        return self._map(func, [(tuple(x), {}) for x in iterable], chunksize, callback, error_callback)

    def imap(self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int = 1) -> IMapIterator:
        return IMapIterator(self, func, self._chunks(iterable, chunksize), ordered=True)

    def imap_unordered(self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int = 1) -> IMapIterator:
        return IMapIterator(self, func, self._chunks(iterable, chunksize), ordered=False)

    def _chunks(self, iterable: Iterable[Any], chunksize: int) -> Iterator[list[Item]]:
        if self._state != RUN:
            raise ValueError("Pool not running")
        size = self._chunksize(0, chunksize)
        it = iter(iterable)
        while True:
            chunk: list[Item] = [((x,), {}) for x in itertools.islice(it, size)]
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        """No more work; what was sent still runs (``join`` waits for it)."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE

    def terminate(self) -> None:
        """Stop at once: the actors are killed, work not done is lost."""
        with self._lock:
            self._state = TERMINATE
            actors, self._actors = self._actors, []
            self._outstanding = []
        for actor in actors:
            tray.kill(actor)

    def join(self) -> None:
        """Wait for the work sent so far; the pool must be closed (or terminated) first."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        with self._lock:
            refs = list(self._outstanding)
        if refs:
            tray.wait(refs, num_returns=len(refs))

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.terminate()

    def __reduce__(self) -> Any:
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __repr__(self) -> str:
        return f"<tray.util.multiprocessing.Pool state={self._state} processes={self._processes}>"
