"""DataIterator: batches from a dataset or from one shard of ``streaming_split``, usable in any
process (Train's dataset shards are these)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

import tray

from . import _blocks


def _numpy_batches(blocks: Iterator[pa.Table], batch_size: int | None, drop_last: bool, writable: bool
                   ) -> Iterator[dict[str, np.ndarray]]:
    """Batches as dicts of ndarrays, each block converted once and sliced (no per-batch arrow work)."""
    carry: dict[str, np.ndarray] | None = None
    for block in blocks:
        if not block.num_rows:
            continue
        arrays = _blocks.to_numpy_batch(block, writable=writable)
        if batch_size is None:
            yield arrays
            continue
        n = block.num_rows
        off = 0
        if carry is not None:
            have = len(next(iter(carry.values())))
            need = batch_size - have
            take = min(need, n)
            carry = {k: np.concatenate([carry[k], arrays[k][:take]]) for k in arrays}
            off = take
            if have + take < batch_size:
                continue
            yield carry
            carry = None
        while n - off >= batch_size:
            yield {k: v[off:off + batch_size] for k, v in arrays.items()}
            off += batch_size
        if off < n:
            carry = {k: v[off:] for k, v in arrays.items()}
    if carry is not None and not drop_last:
        yield carry


def _local_shuffle(blocks: Iterator[pa.Table], buffer_size: int, batch_size: int | None, seed: int | None
                   ) -> Iterator[pa.Table]:
    """Rows drawn at random from a buffer of at least ``buffer_size`` rows."""
    rng = np.random.default_rng(seed)
    step = batch_size or buffer_size
    buf: list[pa.Table] = []
    have = 0
    for block in blocks:
        buf.append(block)
        have += block.num_rows
        if have >= buffer_size + step:
            table = _blocks.concat(buf)
            table = table.take(pa.array(rng.permutation(table.num_rows)))
            out = table.num_rows - buffer_size
            yield table.slice(0, out)
            buf, have = [table.slice(out)], buffer_size
    if have:
        table = _blocks.concat(buf)
        yield table.take(pa.array(rng.permutation(table.num_rows)))


class DataIterator:
    """Iterates a stream of blocks as rows or batches. Made by ``Dataset.iterator()`` and by
    ``Dataset.streaming_split(n)``; picklable, so an actor or a Train worker can consume it."""

    def __init__(self, blocks_fn: Callable[[], Iterator[Any]], name: str = "dataset") -> None:
        self._blocks_fn = blocks_fn  # -> iterator of block refs
        self._name = name
        self._stats: Any = None

    def _blocks(self, prefetch: int = 1) -> Iterator[pa.Table]:
        refs = self._blocks_fn()
        pending: list[Any] = []
        ahead = max(1, prefetch)
        for ref in refs:
            pending.append(ref)
            if len(pending) > ahead:
                yield tray.get(pending.pop(0))
        for ref in pending:
            yield tray.get(ref)

    def iter_batches(self, *, prefetch_batches: int = 1, batch_size: int | None = 256,
                     batch_format: str | None = "default", drop_last: bool = False,
                     local_shuffle_buffer_size: int | None = None, local_shuffle_seed: int | None = None,
                     _writable: bool = False) -> Iterator[Any]:
        """Batches of ``batch_size`` rows (the last may be short unless ``drop_last``)."""
        fmt = _blocks.check_batch_format(batch_format)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size}")
        blocks = self._blocks(prefetch_batches)
        if local_shuffle_buffer_size is not None:
            if local_shuffle_buffer_size < 1:
                raise ValueError("local_shuffle_buffer_size must be positive")
            blocks = _local_shuffle(blocks, local_shuffle_buffer_size, batch_size, local_shuffle_seed)
        if fmt == "numpy":
            yield from _numpy_batches(blocks, batch_size, drop_last, _writable)
            return
        for batch in _blocks.batches(blocks, batch_size, drop_last=drop_last):
            yield _blocks.to_batch(batch, fmt)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for block in self._blocks():
            yield from _blocks.rows(block)

    def iter_torch_batches(self, *, prefetch_batches: int = 1, batch_size: int | None = 256,
                           dtypes: Any = None, device: str = "auto",
                           collate_fn: Callable[[dict[str, np.ndarray]], Any] | None = None,
                           drop_last: bool = False, local_shuffle_buffer_size: int | None = None,
                           local_shuffle_seed: int | None = None) -> Iterator[Any]:
        """Batches as dicts of torch tensors (``dtypes``: one dtype or one per column), on ``device``
        ("auto": the GPU when this process was given one); ``collate_fn`` turns a numpy batch into
        whatever it returns instead."""
        torch = tray.lowlevel.require("torch", "train")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() and tray.get_runtime_context().get_accelerator_ids() \
                .get("GPU") else "cpu"
        batches = self.iter_batches(prefetch_batches=prefetch_batches, batch_size=batch_size,
                                    batch_format="numpy", drop_last=drop_last,
                                    local_shuffle_buffer_size=local_shuffle_buffer_size,
                                    local_shuffle_seed=local_shuffle_seed, _writable=True)
        for batch in batches:
            if collate_fn is not None:
                yield collate_fn(batch)
                continue
            out = {}
            for k, v in batch.items():
                dt = dtypes.get(k) if isinstance(dtypes, dict) else dtypes
                if v.dtype == object:
                    out[k] = v
                    continue
                t = torch.from_numpy(v)
                if dt is not None and t.dtype != dt:
                    t = t.to(dt)
                if device != "cpu":
                    t = t.to(device)
                out[k] = t
            yield out

    def materialize(self) -> Any:
        from .dataset import from_blocks

        return from_blocks([tray.put(b) for b in self._blocks()])

    def stats(self) -> str:
        return self._stats.to_string() if self._stats is not None else f"{self._name}: no stats yet"

    def __repr__(self) -> str:
        return f"DataIterator({self._name})"


# --- streaming_split ---------------------------------------------------------------------------


class SplitCoordinator:
    """An actor running one execution per epoch and handing its blocks to ``n`` consumers:
    first come first served, or (``equal``) the same number of rows each."""

    def __init__(self, dataset: Any, n: int, equal: bool) -> None:
        self.dataset, self.n, self.equal = dataset, n, equal
        self.cond = threading.Condition()
        self.epoch = -1
        self.done: set[int] = set()
        self.it: Iterator[Any] | None = None
        self.queues: list[list[Any]] | None = None
        # the refs last handed to each split, kept until its consumer has fetched them: the
        # consumer asks for the next ref only after getting all but its prefetch window
        self.held: list[list[Any]] = [[] for _ in range(n)]

    def _hand(self, split: int, ref: Any) -> list[Any]:
        held = self.held[split]
        held.append(ref)
        if len(held) > 4:
            held.pop(0)
        return [ref]

    def _start(self, epoch: int) -> None:
        self.epoch = epoch
        self.done = set()
        if self.equal:
            from ._shuffle import slice_rows

            bundles = list(self.dataset._execute())
            total = sum(m.num_rows for _, m in bundles)
            per = total // self.n
            parts = slice_rows(bundles, [per] * self.n) if per else []
            self.queues = [[ref] for ref, _ in parts] if parts else [[] for _ in range(self.n)]
            self.it = iter(())
        else:
            self.queues = None
            self.it = iter(self.dataset._execute())

    def next(self, split: int, epoch: int) -> tuple[str, Any]:
        """``("ref", ref)``: the next block of ``split`` in ``epoch``; ``("done", None)``: its share
        is over; ``("wait", None)``: the others are still in the last epoch (ask again). Never
        blocks on other splits, so it needs no concurrency from the actor."""
        with self.cond:
            if epoch > self.epoch:
                if self.epoch >= 0 and len(self.done) < self.n:
                    return ("wait", None)
                self._start(epoch)
            elif epoch < self.epoch:
                return ("done", None)
            if self.queues is not None:
                q = self.queues[split]
                if q:
                    return ("ref", self._hand(split, q.pop(0))[0])
                self.done.add(split)
                return ("done", None)
            try:
                ref, _ = next(self.it)  # type: ignore[arg-type]
                return ("ref", self._hand(split, ref)[0])
            except StopIteration:
                self.done.add(split)
                return ("done", None)


class _SplitBlocks:
    """The block refs of one split, epoch after epoch (picklable: holds the coordinator's handle)."""

    def __init__(self, coordinator: Any, split: int) -> None:
        self.coordinator, self.split, self.epoch = coordinator, split, 0

    def __call__(self) -> Iterator[Any]:
        epoch = self.epoch
        self.epoch += 1
        delay = 0.001
        while True:
            kind, ref = tray.get(self.coordinator.next.remote(self.split, epoch))
            if kind == "done":
                return
            if kind == "wait":
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            delay = 0.001
            yield ref


def streaming_split(dataset: Any, n: int, equal: bool) -> list[DataIterator]:
    if n < 1:
        raise ValueError(f"streaming_split needs n >= 1, got {n}")
    coord = tray.remote(SplitCoordinator).options(num_cpus=0, max_concurrency=max(4, 2 * n + 2)) \
        .remote(dataset, n, equal)
    return [DataIterator(_SplitBlocks(coord, i), name=f"split {i} of {n}") for i in range(n)]
