"""All-to-all operators on bundles: random shuffle, sort and groupby (range-partitioned by
sampled boundaries), row-exact repartition and splits, zip. The row arithmetic (which slices
of which blocks make each output) is pure and lives in ``_rows.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import tray

from . import _blocks, _rows
from ._executor import BlockMeta, Bundle, meta_of
from ._transforms import merge_partials


def _pack(block: pa.Table) -> tuple[pa.Table, BlockMeta]:
    return block, meta_of(block)


def _collect(pairs: list[tuple[Any, Any]]) -> list[Bundle]:
    metas = tray.get([m for _, m in pairs])
    return [(b, m) for (b, _), m in zip(pairs, metas, strict=False)]


# --- random shuffle ------------------------------------------------------------------------
#
# A map-reduce sized to the cluster, not to the number of blocks: ``m`` map tasks (each over
# a group of input blocks) permute their rows and cut them into ``r`` parts, one per reduce
# task; reduce task j gathers its part of every map, permutes them and cuts the result into
# its share of the output blocks. Objects in flight: m * r + outputs, whatever the block count;
# every part and output is made by one ``take`` (a gather), so no row is copied twice.


def _even_bounds(n: int, parts: int) -> list[int]:
    return [n * i // parts for i in range(parts + 1)]


def _shuffle_map(parts: int, seed: Any, index: int, *blocks: pa.Table) -> Any:
    block = _blocks.concat(list(blocks))  # a take gathers across chunks: no combine first
    n = block.num_rows
    perm = np.random.default_rng(None if seed is None else [seed, index, 0]).permutation(n)
    b = _even_bounds(n, parts)
    out = tuple(block.take(pa.array(perm[b[j]:b[j + 1]])) for j in range(parts))
    return out if parts > 1 else out[0]


def _shuffle_reduce(seed: Any, index: int, outputs: int, *parts: pa.Table) -> Any:
    block = _blocks.concat(list(parts))
    n = block.num_rows
    perm = np.random.default_rng(None if seed is None else [seed, index, 1]).permutation(n)
    b = _even_bounds(n, outputs)
    blocks = [_blocks.compact(block.take(pa.array(perm[b[k]:b[k + 1]]))) for k in range(outputs)]
    return ([meta_of(x) for x in blocks], *blocks)


def shuffle_plan(num_blocks: int, num_outputs: int, cpus: float) -> tuple[list[list[int]], list[int]]:
    """(the input blocks of each map task, the number of output blocks of each reduce task):
    at most ``4 * cpus`` tasks a side, inputs and outputs spread evenly and kept in order."""
    width = max(1, int(4 * cpus))
    m = max(1, min(num_blocks, width))
    r = max(1, min(num_outputs, width))
    mb = _even_bounds(num_blocks, m)
    rb = _even_bounds(num_outputs, r)
    return [list(range(mb[i], mb[i + 1])) for i in range(m)], [rb[j + 1] - rb[j] for j in range(r)]


def random_shuffle(bundles: list[Bundle], seed: int | None, num_outputs: int | None = None) -> list[Bundle]:
    if not bundles:
        return []
    outputs = num_outputs or len(bundles)
    groups, shares = shuffle_plan(len(bundles), outputs, tray.cluster_resources().get("CPU", 1.0))
    parts = len(shares)
    mapper = tray.remote(_shuffle_map).options(num_returns=parts)
    maps = [mapper.remote(parts, seed, i, *[bundles[k][0] for k in g]) for i, g in enumerate(groups)]
    if parts == 1:
        maps = [[m] for m in maps]
    reduced = []
    for j, share in enumerate(shares):
        reducer = tray.remote(_shuffle_reduce).options(num_returns=share + 1)
        reduced.append(reducer.remote(seed, j, share, *[m[j] for m in maps]))
    metas = tray.get([refs[0] for refs in reduced])
    return [(ref, meta) for refs, ms in zip(reduced, metas, strict=True)
            for ref, meta in zip(refs[1:], ms, strict=True)]


# --- range partitioning: sort and groupby ----------------------------------------------------


def _sample(block: pa.Table, key: str, k: int) -> np.ndarray:
    if not block.num_rows:
        return np.array([])
    col = _blocks.column_to_numpy(block.column(key))
    idx = np.linspace(0, block.num_rows - 1, min(k, block.num_rows)).astype(np.int64)
    return col[idx]


def _range_map(block: pa.Table, key: str, bounds: np.ndarray, descending: bool) -> Any:
    parts = len(bounds) + 1
    if block.num_rows:
        col = _blocks.column_to_numpy(block.column(key))
        pid = np.searchsorted(bounds, col, side="right") if len(bounds) else np.zeros(len(col), np.int64)
        if descending:
            pid = parts - 1 - pid
        order = np.argsort(pid, kind="stable")
        ends = np.cumsum(np.bincount(pid, minlength=parts))
        starts = ends - np.bincount(pid, minlength=parts)
        out = [block.take(pa.array(order[a:b])) for a, b in zip(starts, ends, strict=True)]
    else:
        out = [block] * parts
    return tuple(out) if parts > 1 else out[0]


def _sort_reduce(keys: Sequence[str], descending: Sequence[bool], *parts: pa.Table) -> tuple[pa.Table, BlockMeta]:
    block = _blocks.concat(list(parts))
    if block.num_rows > 1:
        order = [(k, "descending" if d else "ascending") for k, d in zip(keys, descending, strict=False)]
        block = block.take(pc.sort_indices(block, sort_keys=order))
    return _pack(_blocks.compact(block))


def _agg_reduce(keys: Sequence[str], aggs: Sequence[Any], *parts: pa.Table) -> tuple[pa.Table, BlockMeta]:
    return _pack(merge_partials(_blocks.concat(list(parts)), keys, aggs))


def range_partition(bundles: list[Bundle], key: str, descending: bool, reduce_fn: Callable[..., Any],
                    reduce_args: tuple, num_outputs: int | None = None) -> list[Bundle]:
    """Sample ``key`` in every block, cut its range into ``num_outputs`` parts, send each row to
    its part and run ``reduce_fn(*reduce_args, *parts)`` once per part (in key order)."""
    bundles = [b for b in bundles if b[1].num_rows] or bundles[:1]
    parts = max(1, num_outputs or len(bundles))
    reducer = tray.remote(reduce_fn).options(num_returns=2)
    if parts == 1 or len(bundles) <= 1:
        return _collect([reducer.remote(*reduce_args, *[ref for ref, _ in bundles])])
    sampler = tray.remote(_sample)
    samples = [s for s in tray.get([sampler.remote(ref, key, 32) for ref, _ in bundles]) if len(s)]
    bounds = _rows.boundaries(np.concatenate(samples) if samples else np.array([]), parts)
    parts = len(bounds) + 1
    mapper = tray.remote(_range_map).options(num_returns=parts)
    maps = [mapper.remote(ref, key, bounds, descending) for ref, _ in bundles]
    if parts == 1:
        maps = [[m] for m in maps]
    return _collect([reducer.remote(*reduce_args, *[m[j] for m in maps]) for j in range(parts)])


def sort(bundles: list[Bundle], keys: Sequence[str], descending: Sequence[bool]) -> list[Bundle]:
    if not bundles:
        return []
    return range_partition(bundles, keys[0], descending[0], _sort_reduce, (list(keys), list(descending)))


def aggregate(partials: list[Bundle], keys: Sequence[str], aggs: Sequence[Any]) -> list[Bundle]:
    """Merge per-block partial aggregates into the final rows, sorted by the keys."""
    if not partials:
        partials = [(tray.put(pa.table({})), meta_of(pa.table({})))]
    total = sum(m.num_rows for _, m in partials)
    if not keys or total <= 200_000:
        reducer = tray.remote(_agg_reduce).options(num_returns=2)
        return _collect([reducer.remote(list(keys), list(aggs), *[ref for ref, _ in partials])])
    return range_partition(partials, keys[0], False, _agg_reduce, (list(keys), list(aggs)))


# --- row-exact slicing: repartition, split, zip ------------------------------------------------


def _assemble(pieces: Sequence[tuple[int, int]], *blocks: pa.Table) -> tuple[pa.Table, BlockMeta]:
    return _pack(_blocks.compact(_blocks.concat([b.slice(s, n) for b, (s, n) in zip(blocks, pieces, strict=False)])))


def slice_rows(bundles: list[Bundle], sizes: Sequence[int]) -> list[Bundle]:
    """New blocks of exactly ``sizes`` rows, in order, cut from ``bundles``."""
    counts = [m.num_rows for _, m in bundles]
    plan = _rows.cut(counts, sizes)
    assembler = tray.remote(_assemble).options(num_returns=2)
    out: list[tuple[Any, Any]] = []
    for pieces in plan:
        if len(pieces) == 1 and pieces[0][1] == 0 and pieces[0][2] == counts[pieces[0][0]]:
            out.append((bundles[pieces[0][0]][0], None))
            continue
        refs = [bundles[i][0] for i, _, _ in pieces]
        if not refs:
            empty = pa.table({}) if not bundles else tray.get(bundles[0][0]).slice(0, 0)
            out.append((tray.put(empty), tray.put(meta_of(empty))))
            continue
        out.append(assembler.remote([(s, n) for _, s, n in pieces], *refs))
    metas = tray.get([m if m is not None else tray.put(bundles[0][1]) for _, m in out])
    result = []
    for (ref, m), meta, pieces in zip(out, metas, plan, strict=False):
        if m is None:
            meta = bundles[pieces[0][0]][1]
        result.append((ref, meta))
    return result


def _zip_blocks(left: pa.Table, right: pa.Table) -> tuple[pa.Table, BlockMeta]:
    names = list(left.column_names)
    out = left
    for i, name in enumerate(right.column_names):
        new = name
        k = 1
        while new in names:
            new = f"{name}_{k}"
            k += 1
        names.append(new)
        out = out.append_column(new, right.column(i))
    return _pack(out)


def zip_bundles(left: list[Bundle], right: list[Bundle]) -> list[Bundle]:
    nl, nr = sum(m.num_rows for _, m in left), sum(m.num_rows for _, m in right)
    if nl != nr:
        raise ValueError(f"zip needs datasets of the same number of rows, got {nl} and {nr}")
    aligned = slice_rows(right, [m.num_rows for _, m in left])
    zipper = tray.remote(_zip_blocks).options(num_returns=2)
    return _collect([zipper.remote(lref, rref) for (lref, _), (rref, _) in zip(left, aligned, strict=False)])
