"""The block transforms a stage applies (picklable callables ``Iterator[Table] -> Iterator[Table]``):
row maps, batch maps, flat maps, filters, column edits and the partial aggregation that runs
where blocks are made."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _blocks


def fn_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "<lambda>" if name == "<lambda>" else name


def _check_row(out: Any, fn: Any) -> Mapping[str, Any]:
    if not isinstance(out, Mapping):
        raise TypeError(f"{fn_name(fn)} returned {type(out).__name__} {out!r:.80}: a row must be a dict; wrap a "
                        f"value as {{'item': value}}")
    return out


class MapRows:
    """``map``: one output row per input row."""

    def __init__(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs or {}

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        fn, args, kwargs = self.fn, self.args, self.kwargs
        for block in blocks:
            if block.num_rows:
                yield _blocks.from_rows(_check_row(fn(row, *args, **kwargs), fn) for row in _blocks.rows(block))


class FlatMap:
    """``flat_map``: each input row to a list (or iterator) of rows."""

    def __init__(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs or {}

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        fn, args, kwargs = self.fn, self.args, self.kwargs
        for block in blocks:
            out = [_check_row(r, fn) for row in _blocks.rows(block) for r in fn(row, *args, **kwargs)]
            if out:
                yield _blocks.from_rows(out)


class Filter:
    """``filter``: the rows for which ``fn(row)`` is true, or for which ``expr`` (a pandas
    expression over the columns, e.g. ``"x > 3 and y == 'a'"``) holds."""

    def __init__(self, fn: Callable[..., Any] | None = None, expr: str | None = None,
                 args: tuple = (), kwargs: dict | None = None) -> None:
        if (fn is None) == (expr is None):
            raise ValueError("filter needs exactly one of fn and expr")
        self.fn, self.expr, self.args, self.kwargs = fn, expr, args, kwargs or {}

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            if not block.num_rows:
                yield block
                continue
            if self.expr is not None:
                mask = np.asarray(_blocks.to_pandas(block).eval(self.expr), dtype=bool)
            else:
                fn, args, kwargs = self.fn, self.args, self.kwargs
                assert fn is not None
                mask = np.fromiter((bool(fn(r, *args, **kwargs)) for r in _blocks.rows(block)), dtype=bool,
                                   count=block.num_rows)
            yield block.filter(pa.array(mask))


class MapBatches:
    """``map_batches``: ``fn`` over batches of ``batch_size`` rows in ``batch_format``; it returns
    a batch (or yields several)."""

    def __init__(self, fn: Callable[..., Any], batch_size: int | None, batch_format: str, zero_copy_batch: bool,
                 args: tuple = (), kwargs: dict | None = None) -> None:
        self.fn, self.batch_size, self.batch_format = fn, batch_size, batch_format
        self.zero_copy_batch, self.args, self.kwargs = zero_copy_batch, args, kwargs or {}

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        fn, args, kwargs, fmt = self.fn, self.args, self.kwargs, self.batch_format
        writable = not self.zero_copy_batch
        to_batch, to_block = _blocks.to_batch, _blocks.to_block
        for batch in _blocks.batches(blocks, self.batch_size):
            out = fn(to_batch(batch, fmt, writable=writable), *args, **kwargs)
            if inspect.isgenerator(out):
                for o in out:
                    yield to_block(o)
            else:
                yield to_block(out)


class CallableClass:
    """Builds a callable class's instance once (per actor) and gives the transform that uses it."""

    def __init__(self, cls: type, ctor_args: tuple, ctor_kwargs: dict,
                 make: Callable[[Any], Callable[[Iterator[pa.Table]], Iterator[pa.Table]]]) -> None:
        self.cls, self.ctor_args, self.ctor_kwargs, self.make = cls, ctor_args, ctor_kwargs, make

    def __call__(self) -> Callable[[Iterator[pa.Table]], Iterator[pa.Table]]:
        return self.make(self.cls(*self.ctor_args, **self.ctor_kwargs))


class AddColumn:
    def __init__(self, col: str, fn: Callable[[Any], Any], batch_format: str) -> None:
        self.col, self.fn, self.batch_format = col, fn, batch_format

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            values = self.fn(_blocks.to_batch(block, self.batch_format))
            if hasattr(values, "to_numpy") and not isinstance(values, (pa.Array, pa.ChunkedArray)):
                values = values.to_numpy()
            column = _blocks.numpy_to_column(values)
            if len(column) != block.num_rows:
                raise ValueError(f"add_column {self.col!r}: fn returned {len(column)} values for a batch of "
                                 f"{block.num_rows} rows")
            if self.col in block.column_names:
                yield block.set_column(block.column_names.index(self.col), self.col, column)
            else:
                yield block.append_column(self.col, column)


def _missing(block: pa.Table, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in block.column_names]
    if missing:
        raise ValueError(f"{what}: no column {missing[0]!r} in the dataset (columns: {block.column_names})")


class SelectColumns:
    def __init__(self, cols: Sequence[str]) -> None:
        self.cols = list(cols)

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            _missing(block, self.cols, "select_columns")
            yield block.select(self.cols)


class DropColumns:
    def __init__(self, cols: Sequence[str]) -> None:
        self.cols = list(cols)

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            _missing(block, self.cols, "drop_columns")
            yield block.drop_columns(self.cols)


class RenameColumns:
    def __init__(self, names: Mapping[str, str] | Sequence[str]) -> None:
        self.names = names

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            if isinstance(self.names, Mapping):
                _missing(block, list(self.names), "rename_columns")
                yield block.rename_columns([self.names.get(c, c) for c in block.column_names])
            else:
                if len(self.names) != block.num_columns:
                    raise ValueError(f"rename_columns: {len(self.names)} names for {block.num_columns} columns")
                yield block.rename_columns(list(self.names))


def group_slices(block: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, list[tuple[tuple, int, int]]]:
    """``block`` sorted by ``keys``, and each group's ``(key values, start, length)`` in it."""
    if not keys:
        return block, [((), 0, block.num_rows)]
    if not block.num_rows:
        return block, []
    _missing(block, keys, "groupby")
    block = block.take(pc.sort_indices(block, sort_keys=[(k, "ascending") for k in keys])) \
        if block.num_rows > 1 else block
    cols = [_blocks.column_to_numpy(block.column(k)) for k in keys]
    change = np.zeros(block.num_rows, dtype=bool)
    change[0] = True
    for c in cols:
        change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], block.num_rows)
    key_lists = [c[starts].tolist() for c in cols]
    return block, [(tuple(kl[i] for kl in key_lists), int(s), int(e - s))
                   for i, (s, e) in enumerate(zip(starts, ends, strict=False))]


STATES = "__tray_agg_states"


class PartialAggregate:
    """Each block to one row per group: the key columns and the pickled partial accumulators."""

    def __init__(self, keys: Sequence[str], aggs: Sequence[Any]) -> None:
        self.keys, self.aggs = list(keys), list(aggs)

    def __call__(self, blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for block in blocks:
            if not block.num_rows and not self.keys:
                continue
            sorted_block, groups = group_slices(block, self.keys)
            out_keys: list[list[Any]] = [[] for _ in self.keys]
            states = []
            for key, start, length in groups:
                part = sorted_block.slice(start, length)
                accs = [agg.accumulate_group(agg.init(key[0] if len(key) == 1 else key), part)
                        for agg in self.aggs]
                for i, k in enumerate(key):
                    out_keys[i].append(k)
                states.append(pickle.dumps(accs, protocol=5))
            cols: dict[str, Any] = {}
            for i, k in enumerate(self.keys):
                cols[k] = pa.array(out_keys[i], type=block.schema.field(k).type)
            cols[STATES] = pa.array(states, type=pa.binary())
            yield pa.table(cols)


def merge_partials(partials: pa.Table, keys: Sequence[str], aggs: Sequence[Any], descending: bool = False) -> pa.Table:
    """The final rows (keys then each aggregation's column, sorted by key) from partial rows."""
    merged: dict[tuple, list[Any]] = {}
    key_cols = [partials.column(k).to_pylist() for k in keys]
    for i, blob in enumerate(partials.column(STATES).to_pylist()):
        key = tuple(kc[i] for kc in key_cols)
        accs = pickle.loads(blob)
        have = merged.get(key)
        merged[key] = accs if have is None else [agg.merge(a, b) for agg, a, b in zip(aggs, have, accs, strict=False)]
    if not keys and not merged:
        merged[()] = [agg.init(None) for agg in aggs]
    ordered = sorted(merged, key=lambda k: tuple((v is None, v) for v in k), reverse=descending)
    cols: dict[str, Any] = {}
    for i, k in enumerate(keys):
        cols[k] = pa.array([key[i] for key in ordered], type=partials.schema.field(k).type)
    for j, agg in enumerate(aggs):
        vals = [agg.finalize(merged[key][j]) for key in ordered]
        cols[agg.name] = _blocks.numpy_to_column(vals) if vals and isinstance(vals[0], np.ndarray) \
            else pa.array(vals)
    return pa.table(cols)
