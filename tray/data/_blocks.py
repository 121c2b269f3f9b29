"""Blocks: pyarrow Tables. Converting them to and from the batch formats users see
("numpy": a dict of ndarrays, "pandas", "pyarrow"), rows, tensor columns, and slicing.

Tensor columns (a column whose values are ndarrays of one shape) are pyarrow's
fixed_shape_tensor extension type, so they travel zero-copy like any other column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

BATCH_FORMATS = ("default", "numpy", "pandas", "pyarrow")


def check_batch_format(batch_format: str | None) -> str:
    """The format a name means ("default" is numpy, as in Ray), or ValueError naming the choices."""
    if batch_format is None:
        return "pyarrow"
    if batch_format not in BATCH_FORMATS:
        raise ValueError(f"batch_format must be one of {list(BATCH_FORMATS)} (or None), got {batch_format!r}")
    return "numpy" if batch_format == "default" else batch_format


def _is_tensor_type(t: pa.DataType) -> bool:
    return isinstance(t, pa.FixedShapeTensorType)


def column_to_numpy(col: pa.ChunkedArray | pa.Array, *, writable: bool = False) -> np.ndarray:
    """One column as an ndarray (tensor columns as (n, *shape)); zero-copy where arrow allows."""
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 1:
            col = col.chunk(0)
        elif col.num_chunks == 0:
            col = pa.array([], type=col.type)
        else:
            col = col.combine_chunks()
    if _is_tensor_type(col.type):
        arr = col.to_numpy_ndarray()
    else:
        arr = col.to_numpy(zero_copy_only=False)
    if writable and not arr.flags.writeable:
        arr = arr.copy()
    return arr


def numpy_to_column(values: Any) -> pa.Array:
    """An ndarray (or list) as an arrow column: 2+-d arrays become tensor columns."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if isinstance(values, list) and values and isinstance(values[0], np.ndarray):
        shapes = {v.shape for v in values}
        if len(shapes) == 1:
            values = np.stack(values)
        else:
            return pa.array([v.tolist() for v in values])
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim > 1:
        arr = np.ascontiguousarray(arr)
        if arr.strides[0] < max(arr.strides):  # size-1 dimensions can leave odd strides
            arr = arr.copy()
            if arr.strides[0] < max(arr.strides):
                arr = np.lib.stride_tricks.as_strided(arr, strides=_c_strides(arr))
        return pa.FixedShapeTensorArray.from_numpy_ndarray(arr)
    if arr.ndim == 0:
        raise ValueError(f"a column must be 1-d or more, got a scalar {arr!r}")
    if arr.dtype == object and len(arr) and isinstance(arr[0], np.ndarray):
        return numpy_to_column(list(arr))
    return pa.array(arr)


def _c_strides(arr: np.ndarray) -> tuple[int, ...]:
    strides, step = [], arr.itemsize
    for dim in reversed(arr.shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def table_from_numpy(batch: Mapping[str, Any]) -> pa.Table:
    cols = {str(k): numpy_to_column(v) for k, v in batch.items()}
    lengths = {len(c) for c in cols.values()}
    if len(lengths) > 1:
        sizes = {k: len(c) for k, c in cols.items()}
        raise ValueError(f"the columns of a batch must have one length, got {sizes}")
    return pa.table(cols)


def table_from_pandas(df: Any) -> pa.Table:
    cols = {}
    for name in df.columns:
        s = df[name]
        if s.dtype == object and len(s) and isinstance(s.iloc[0], np.ndarray):
            cols[str(name)] = numpy_to_column(list(s))
        else:
            cols[str(name)] = pa.Array.from_pandas(s)
    if not cols:
        return pa.table({})
    return pa.table(cols)


def to_block(batch: Any) -> pa.Table:
    """What a UDF returned, as a block; TypeError naming what it was otherwise."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return table_from_numpy(batch)
    mod = type(batch).__module__
    if mod.startswith("pandas"):
        import pandas as pd

        if isinstance(batch, pd.DataFrame):
            return table_from_pandas(batch)
    raise TypeError(f"a batch must be a dict of numpy arrays, a pandas DataFrame or a pyarrow Table; "
                    f"got {type(batch).__name__}")


def to_numpy_batch(block: pa.Table, *, writable: bool = False) -> dict[str, np.ndarray]:
    return {name: column_to_numpy(block.column(i), writable=writable) for i, name in enumerate(block.column_names)}


def to_pandas(block: pa.Table) -> Any:
    import pandas as pd

    if any(_is_tensor_type(f.type) for f in block.schema):
        data = {}
        for i, name in enumerate(block.column_names):
            col = block.column(i)
            data[name] = list(column_to_numpy(col)) if _is_tensor_type(col.type) else col.to_pandas()
        return pd.DataFrame(data)
    return block.to_pandas()


def to_batch(block: pa.Table, fmt: str, *, writable: bool = False) -> Any:
    """``block`` in batch format ``fmt`` (already checked)."""
    if fmt == "numpy":
        return to_numpy_batch(block, writable=writable)
    if fmt == "pandas":
        return to_pandas(block)
    return block


def rows(block: pa.Table) -> Iterator[dict[str, Any]]:
    """The rows of a block as dicts (tensor cells as ndarrays)."""
    tensor_cols = [name for name, f in zip(block.column_names, block.schema, strict=False) if _is_tensor_type(f.type)]
    if not tensor_cols:
        yield from block.to_pylist()
        return
    plain = block.drop_columns(tensor_cols).to_pylist() if len(tensor_cols) < block.num_columns \
        else [{} for _ in range(block.num_rows)]
    tensors = {name: column_to_numpy(block.column(name)) for name in tensor_cols}
    order = block.column_names
    for i, row in enumerate(plain):
        for name in tensor_cols:
            row[name] = tensors[name][i]
        yield {k: row[k] for k in order}


def from_rows(items: Iterable[Mapping[str, Any]]) -> pa.Table:
    """A block from row dicts; ndarray cells become tensor columns."""
    items = list(items)
    if not items:
        return pa.table({})
    names: dict[str, None] = {}
    for r in items:
        if not isinstance(r, Mapping):
            raise TypeError(f"a row must be a dict, got {type(r).__name__}: {r!r}")
        for k in r:
            names.setdefault(k, None)
    cols = {}
    for name in names:
        values = [r.get(name) for r in items]
        first = next((v for v in values if v is not None), None)
        if isinstance(first, np.ndarray):
            cols[str(name)] = numpy_to_column(values)
        elif isinstance(first, np.generic):
            cols[str(name)] = pa.array(np.asarray(values))
        else:
            cols[str(name)] = pa.array(values)
    return pa.table(cols)


def concat(blocks: list[pa.Table]) -> pa.Table:
    """One table from many; tables with no columns (empty outputs) are skipped."""
    blocks = [b for b in blocks if b.num_columns or b.num_rows]
    if not blocks:
        return pa.table({})
    if len(blocks) == 1:
        return blocks[0]
    try:
        return pa.concat_tables(blocks, promote_options="default")
    except pa.ArrowInvalid:
        return pa.concat_tables(blocks, promote_options="permissive")


def compact(block: pa.Table) -> pa.Table:
    """One chunk per column (so later batches convert without copies), holding only its own rows.

    A slice of a table keeps its parent's whole buffers, and pickling it writes them all: a
    block about to be stored is copied when its buffers are much bigger than its rows."""
    if not block.num_columns:
        return block
    if any(c.num_chunks > 1 for c in block.columns):
        return block.combine_chunks()
    if block.get_total_buffer_size() > 2 * size_bytes(block) + 65536:
        return pa.concat_tables([block, block.slice(0, 0)]).combine_chunks()
    return block


def size_bytes(block: pa.Table) -> int:
    try:
        return int(block.nbytes)
    except Exception:  # noqa: BLE001 - extension types without nbytes
        return int(block.get_total_buffer_size())


def split_by_size(block: pa.Table, max_bytes: int) -> list[pa.Table]:
    """``block`` cut into slices of at most ``max_bytes`` (by average row size)."""
    total = size_bytes(block)
    if total <= max_bytes or block.num_rows <= 1:
        return [block]
    pieces = -(-total // max_bytes)
    per = -(-block.num_rows // pieces)
    return [block.slice(i, per) for i in range(0, block.num_rows, per)]


def batches(blocks: Iterable[pa.Table], batch_size: int | None, *, drop_last: bool = False) -> Iterator[pa.Table]:
    """Tables of exactly ``batch_size`` rows cut from a stream of blocks (the last may be short,
    unless ``drop_last``); ``None``: one batch per block."""
    if batch_size is None:
        for b in blocks:
            if b.num_rows:
                yield b
        return
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size}")
    pending: list[pa.Table] = []
    have = 0
    for b in blocks:
        if not b.num_rows:
            continue
        if not pending and b.num_rows >= batch_size:
            off = 0
            n = b.num_rows
            while n - off >= batch_size:
                yield b.slice(off, batch_size)
                off += batch_size
            if off < n:
                pending.append(b.slice(off))
                have = n - off
            continue
        pending.append(b)
        have += b.num_rows
        while have >= batch_size:
            joined = concat(pending)
            yield joined.slice(0, batch_size)
            rest = joined.slice(batch_size)
            pending = [rest] if rest.num_rows else []
            have = rest.num_rows
            if have >= batch_size:
                pending = []
                have = 0
                off = 0
                while rest.num_rows - off >= batch_size:
                    yield rest.slice(off, batch_size)
                    off += batch_size
                if off < rest.num_rows:
                    pending = [rest.slice(off)]
                    have = rest.num_rows - off
    if have and not drop_last:
        yield concat(pending)


def schema_of(block: pa.Table) -> pa.Schema | None:
    return block.schema if block.num_columns else None
