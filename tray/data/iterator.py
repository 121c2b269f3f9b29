"""DataIterator: batches from a dataset or from one shard of ``streaming_split``, usable in any
process (Train's dataset shards are these)."""

from __future__ import annotations

import collections
import os
import threading
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
            # a process given GPUs (a Train worker) sees them in CUDA_VISIBLE_DEVICES
            device = "cuda" if torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu"
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
    first come first served, or (``equal``) the same number of rows each (``EqualSplit``).

    A thread of the actor pulls the execution ahead of the consumers, at most ``ahead``
    blocks waiting, so a consumer's call finds refs ready; each call hands out up to ``k``
    refs, and consumers ask for the next hand-out while they read the last one."""

    def __init__(self, dataset: Any, n: int, equal: bool) -> None:
        self.dataset, self.n, self.equal = dataset, n, equal
        self.ahead = max(4, 2 * n)
        self.cond = threading.Condition()
        self.epoch = -1
        self.done: set[int] = set()
        self.finished = True  # the epoch's execution has ended
        self.error: BaseException | None = None
        self.queues: list[collections.deque[Any]] = [collections.deque() for _ in range(n)]
        self.shared: collections.deque[Any] = collections.deque()
        # each split's last two hand-outs, kept until its consumer surely holds them: a ref in
        # a reply must outlive the reply's trip (the consumer asks again only after it arrived)
        self.handed: list[collections.deque[list[Any]]] = [collections.deque(maxlen=2) for _ in range(n)]

    def _waiting(self) -> int:
        return len(self.shared) + sum(len(q) for q in self.queues)

    def _start(self, epoch: int) -> None:
        self.epoch, self.done, self.finished, self.error = epoch, set(), False, None
        threading.Thread(target=self._produce, args=(epoch,), name=f"streaming_split epoch {epoch}",
                         daemon=True).start()

    def _produce(self, epoch: int) -> None:
        from ._shuffle import slice_rows
        from ._split import EqualSplit

        splitter: EqualSplit[Any] = EqualSplit(self.n)
        try:
            for ref, meta in self.dataset._execute():
                with self.cond:
                    if not self.equal:
                        self.shared.append(ref)
                    else:
                        for i, bundle in splitter.add((ref, meta), meta.num_rows):
                            self.queues[i].append(bundle[0])
                    self.cond.notify_all()
                    while self._waiting() >= self.ahead and self.epoch == epoch:
                        self.cond.wait(1.0)
            if self.equal:
                held, need = splitter.finish()
                sizes = [k for k in need if k]
                pieces = iter(slice_rows(held, sizes) if sizes else [])
                with self.cond:
                    for i, k in enumerate(need):
                        if k:
                            self.queues[i].append(next(pieces)[0])
        except BaseException as exc:  # noqa: BLE001 - every consumer gets it
            with self.cond:
                self.error = exc
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def next(self, split: int, epoch: int, k: int) -> tuple[str, list[Any]]:
        """``("refs", refs)``: up to ``k`` next blocks of ``split`` in ``epoch``; ``("done", [])``:
        its share is over; ``("wait", [])``: nothing yet (the others are still in the last epoch,
        or the execution is behind): ask again. Waits a little for blocks, never for long."""
        with self.cond:
            if epoch > self.epoch:
                if not self.cond.wait_for(lambda: self.epoch < 0 or len(self.done) >= self.n, 1.0):
                    return ("wait", [])
                if epoch > self.epoch:
                    self._start(epoch)
            elif epoch < self.epoch:
                return ("done", [])
            queue = self.queues[split] if self.equal else self.shared
            self.cond.wait_for(lambda: queue or self.finished, 1.0)
            if queue:
                refs = [queue.popleft() for _ in range(min(k, len(queue)))]
                self.handed[split].append(refs)
                self.cond.notify_all()
                return ("refs", refs)
            if not self.finished:
                return ("wait", [])
            if self.error is not None:
                raise self.error
            self.done.add(split)
            self.cond.notify_all()
            return ("done", [])


class _SplitBlocks:
    """The block refs of one split, epoch after epoch (picklable: holds the coordinator's handle).
    One hand-out is always asked for ahead, while the refs of the last are read."""

    def __init__(self, coordinator: Any, split: int, per_call: int = 4) -> None:
        self.coordinator, self.split, self.epoch, self.per_call = coordinator, split, 0, per_call

    def __call__(self) -> Iterator[Any]:
        epoch = self.epoch
        self.epoch += 1
        ask = self.coordinator.next.remote
        pending = ask(self.split, epoch, self.per_call)
        while True:
            kind, refs = tray.get(pending)
            if kind == "done":
                return
            pending = ask(self.split, epoch, self.per_call)
            yield from refs


def streaming_split(dataset: Any, n: int, equal: bool) -> list[DataIterator]:
    if n < 1:
        raise ValueError(f"streaming_split needs n >= 1, got {n}")
    coord = tray.remote(SplitCoordinator).options(num_cpus=0, max_concurrency=2 * n + 2) \
        .remote(dataset, n, equal)
    return [DataIterator(_SplitBlocks(coord, i), name=f"split {i} of {n}") for i in range(n)]
