"""Creating datasets (Ray's ``ray.data.read_api``): from memory, from ranges, from files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

import tray
from tray.lowlevel import require

from . import _blocks, _plan, _read
from ._executor import meta_of
from .dataset import Dataset, MaterializedDataset

_range = range


def _from_tables(name: str, tables: list[pa.Table]) -> MaterializedDataset:
    bundles = [(tray.put(t), meta_of(t)) for t in tables]
    ds = MaterializedDataset(bundles)
    ds._plan = _plan.Plan(_plan.Source(name, bundles=tuple(bundles)))
    return ds


def range(n: int, *, override_num_blocks: int | None = None, concurrency: int | None = None) -> Dataset:  # noqa: A001
    """Rows ``{"id": 0}`` .. ``{"id": n - 1}``."""
    tasks = _read.range_tasks(n, override_num_blocks)
    return Dataset(_plan.Plan(_plan.Source("ReadRange", read_tasks=tuple(tasks), columns=("id",),
                                           concurrency=concurrency)), ["id"])


def range_tensor(n: int, *, shape: tuple[int, ...] = (1,), override_num_blocks: int | None = None,
                 concurrency: int | None = None) -> Dataset:
    """Rows ``{"data": array}`` where row i's array is ``shape`` filled with i."""
    tasks = _read.range_tasks(n, override_num_blocks, column="data", shape=tuple(shape))
    return Dataset(_plan.Plan(_plan.Source("ReadRangeTensor", read_tasks=tuple(tasks), columns=("data",),
                                           concurrency=concurrency)), ["data"])


def from_items(items: list[Any], *, override_num_blocks: int | None = None) -> MaterializedDataset:
    """Rows from a list: dicts as they are, anything else as ``{"item": value}``."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"from_items needs a list, got {type(items).__name__}")
    rows = [it if isinstance(it, dict) else {"item": it} for it in items]
    n = _read.default_num_blocks(None, len(rows), override_num_blocks) if rows else 1
    n = min(n, max(len(rows), 1))
    bounds = np.linspace(0, len(rows), n + 1).astype(np.int64)
    tables = [_blocks.from_rows(rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]
    return _from_tables("FromItems", tables)


def from_pandas(dfs: Any, *, override_num_blocks: int | None = None) -> MaterializedDataset:
    """One block per DataFrame (or ``override_num_blocks`` blocks cut from them)."""
    require("pandas", "data")
    frames = dfs if isinstance(dfs, (list, tuple)) else [dfs]
    tables = [_blocks.table_from_pandas(df) for df in frames]
    if override_num_blocks is not None:
        tables = _read.split_table(_blocks.concat(tables), override_num_blocks)
    return _from_tables("FromPandas", tables)


def from_numpy(ndarrays: Any) -> MaterializedDataset:
    """Rows ``{"data": row}`` of one array (or one block per array of a list)."""
    arrays = ndarrays if isinstance(ndarrays, (list, tuple)) else [ndarrays]
    return _from_tables("FromNumpy", [pa.table({"data": _blocks.numpy_to_column(np.asarray(a))}) for a in arrays])


def from_arrow(tables: Any, *, override_num_blocks: int | None = None) -> MaterializedDataset:
    tabs = list(tables) if isinstance(tables, (list, tuple)) else [tables]
    tabs = [pa.Table.from_batches([t]) if isinstance(t, pa.RecordBatch) else t for t in tabs]
    if override_num_blocks is not None:
        tabs = _read.split_table(_blocks.concat(tabs), override_num_blocks)
    return _from_tables("FromArrow", tabs)


def from_torch(dataset: Any, local_read: bool = False) -> MaterializedDataset:
    """Rows ``{"item": sample}`` of a torch map-style or iterable dataset."""
    def plain(x: Any) -> Any:
        if hasattr(x, "numpy"):
            x = x.numpy()
        return x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x

    items = []
    for sample in dataset:
        items.append({"item": [plain(s) for s in sample] if isinstance(sample, (tuple, list)) else plain(sample)})
    return from_items(items)


def _files(name: str, paths: Any, filesystem: Any, reader: Any, include_paths: bool,
           override_num_blocks: int | None, file_extensions: Sequence[str] | None, concurrency: int | None
           ) -> Dataset:
    tasks = _read.file_tasks(paths, filesystem, reader, include_paths, override_num_blocks, file_extensions)
    return Dataset(_plan.Plan(_plan.Source(name, read_tasks=tuple(tasks), concurrency=concurrency)))


def read_parquet(paths: str | list[str], *, filesystem: Any = None, columns: list[str] | None = None,
                 filter: Any = None, include_paths: bool = False, override_num_blocks: int | None = None,
                 concurrency: int | None = None, **arrow_parquet_args: Any) -> Dataset:
    """Parquet files (row groups split across tasks), projected to ``columns`` and filtered by a
    pyarrow expression ``filter`` (e.g. ``pyarrow.compute.field("x") > 3``)."""
    if "filters" in arrow_parquet_args:
        filter = arrow_parquet_args.pop("filters")
    if arrow_parquet_args:
        raise TypeError(f"read_parquet: unexpected arguments {sorted(arrow_parquet_args)}")
    tasks, schema = _read.parquet_tasks(paths, filesystem, columns, filter, include_paths, override_num_blocks)
    return Dataset(_plan.Plan(_plan.Source("ReadParquet", read_tasks=tuple(tasks), columns=tuple(schema.names),
                                           concurrency=concurrency)), schema.names)


def read_csv(paths: str | list[str], *, filesystem: Any = None, include_paths: bool = False,
             override_num_blocks: int | None = None, file_extensions: list[str] | None = None,
             concurrency: int | None = None, **arrow_csv_args: Any) -> Dataset:
    return _files("ReadCSV", paths, filesystem, _read.ReadCSV(arrow_csv_args), include_paths, override_num_blocks,
                  file_extensions, concurrency)


def read_json(paths: str | list[str], *, filesystem: Any = None, include_paths: bool = False,
              override_num_blocks: int | None = None, file_extensions: list[str] | None = None,
              concurrency: int | None = None, **arrow_json_args: Any) -> Dataset:
    """JSON lines files, or files holding one JSON array of objects."""
    return _files("ReadJSON", paths, filesystem, _read.ReadJSON(arrow_json_args), include_paths,
                  override_num_blocks, file_extensions, concurrency)


def read_text(paths: str | list[str], *, encoding: str = "utf-8", drop_empty_lines: bool = True,
              filesystem: Any = None, include_paths: bool = False, override_num_blocks: int | None = None,
              file_extensions: list[str] | None = None, concurrency: int | None = None) -> Dataset:
    """One row ``{"text": line}`` per line."""
    return _files("ReadText", paths, filesystem, _read.ReadText(encoding, drop_empty_lines), include_paths,
                  override_num_blocks, file_extensions, concurrency)


def read_numpy(paths: str | list[str], *, filesystem: Any = None, include_paths: bool = False,
               override_num_blocks: int | None = None, file_extensions: Sequence[str] | None = ("npy",),
               concurrency: int | None = None) -> Dataset:
    """``.npy`` files; rows ``{"data": row}``."""
    return _files("ReadNumpy", paths, filesystem, _read.ReadNumpy(), include_paths, override_num_blocks,
                  file_extensions, concurrency)


def read_binary_files(paths: str | list[str], *, filesystem: Any = None, include_paths: bool = False,
                      override_num_blocks: int | None = None, file_extensions: list[str] | None = None,
                      concurrency: int | None = None) -> Dataset:
    """One row ``{"bytes": contents}`` per file."""
    return _files("ReadBinary", paths, filesystem, _read.ReadBinary(), include_paths, override_num_blocks,
                  file_extensions, concurrency)


_IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif"]


def read_images(paths: str | list[str], *, filesystem: Any = None, size: tuple[int, int] | None = None,
                mode: str | None = None, include_paths: bool = False, override_num_blocks: int | None = None,
                file_extensions: list[str] | None = None, concurrency: int | None = None) -> Dataset:
    """One row ``{"image": ndarray}`` per image (Pillow), resized to ``size`` (height, width) and
    converted to ``mode`` when given."""
    require("PIL", "data")
    return _files("ReadImage", paths, filesystem, _read.ReadImage(size, mode), include_paths, override_num_blocks,
                  file_extensions or _IMAGE_EXTENSIONS, concurrency)
