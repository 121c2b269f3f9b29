"""Ray's ``ray.util.as_completed`` and ``ray.util.map_unordered``: results as they finish,
instead of ``tray.get`` on a whole list (which waits for the slowest) or in a loop (which
waits for each in turn)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import tray

DEFAULT_CHUNK_SIZE = 10  # refs waited for at once
DEFAULT_BACKPRESSURE_SIZE = 100  # tasks in flight before map_unordered waits


def _check(chunk_size: int, wait_kwargs: dict[str, Any]) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    if "num_returns" in wait_kwargs:
        raise ValueError("give chunk_size, not num_returns: it is what each wait asks for")


def _batch(refs: list[Any], chunk_size: int, yield_obj_refs: bool,
           wait_kwargs: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Wait for up to ``chunk_size`` of ``refs``: (their values or refs, the rest)."""
    ready, rest = tray.wait(refs, num_returns=min(chunk_size, len(refs)), **wait_kwargs)
    return (ready if yield_obj_refs else tray.get(ready)), rest


def as_completed(refs: Sequence[Any], *, chunk_size: int = DEFAULT_CHUNK_SIZE, yield_obj_refs: bool = False,
                 **wait_kwargs: Any) -> Iterator[Any]:
    """Yield the results of ``refs`` (or the refs, with ``yield_obj_refs``) as they finish,
    ``chunk_size`` at a time; ``wait_kwargs`` (``timeout``, ``fetch_local``) go to each
    ``tray.wait``. Within a chunk the submission order is kept."""
    _check(chunk_size, wait_kwargs)
    pending = list(refs)
    while pending:
        done, pending = _batch(pending, chunk_size, yield_obj_refs, wait_kwargs)
        yield from done


def map_unordered(fn: Any, items: Iterable[Any], *, backpressure_size: int | None = DEFAULT_BACKPRESSURE_SIZE,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, yield_obj_refs: bool = False,
                  **wait_kwargs: Any) -> Iterator[Any]:
    """``fn.remote(item)`` for each item, yielding results as they finish; at most
    ``backpressure_size`` tasks are in flight (None: no limit), so ``items`` may be long or
    endless."""
    _check(chunk_size, wait_kwargs)
    if backpressure_size is not None and (not isinstance(backpressure_size, int) or backpressure_size < 1):
        raise ValueError(f"backpressure_size must be an int >= 1 or None, got {backpressure_size!r}")
    pending: list[Any] = []
    for item in items:
        pending.append(fn.remote(item))
        if backpressure_size is not None and len(pending) >= backpressure_size:
            done, pending = _batch(pending, chunk_size, yield_obj_refs, wait_kwargs)
            yield from done
    yield from as_completed(pending, chunk_size=chunk_size, yield_obj_refs=yield_obj_refs, **wait_kwargs)
