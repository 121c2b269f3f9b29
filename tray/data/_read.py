"""Sources: in-memory data (``from_*``, ``range``) and files (``read_*``), local or through a
pyarrow or fsspec filesystem. A read becomes read tasks — picklable callables yielding
blocks — that run where the first stage runs; paths are listed (and a missing one reported)
when the dataset is made, before anything runs."""

from __future__ import annotations

import fnmatch
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from . import _blocks
from .context import DataContext


def default_num_blocks(est_bytes: int | None, est_rows: int, override: int | None) -> int:
    """Ray's rule: aim at ``read_op_min_num_blocks`` blocks, but none under
    ``target_min_block_size`` nor over ``target_max_block_size``; at most one block per row."""
    if override is not None:
        if override < 1:
            raise ValueError(f"override_num_blocks must be positive, got {override}")
        return max(1, min(override, est_rows)) if est_rows else 1
    ctx = DataContext.get_current()
    n = ctx.read_op_min_num_blocks
    if est_bytes:
        n = min(n, max(1, est_bytes // ctx.target_min_block_size))
        n = max(n, math.ceil(est_bytes / ctx.target_max_block_size))
    return max(1, min(n, est_rows)) if est_rows else 1


# --- in-memory sources ------------------------------------------------------------------------


class RangeTask:
    def __init__(self, start: int, end: int, column: str, shape: tuple[int, ...] | None) -> None:
        self.start, self.end, self.column, self.shape = start, end, column, shape

    def __call__(self) -> Iterator[pa.Table]:
        ids = np.arange(self.start, self.end, dtype=np.int64)
        if self.shape is None:
            yield pa.table({self.column: ids})
        else:
            data = np.broadcast_to(ids.reshape((-1,) + (1,) * len(self.shape)), (len(ids), *self.shape))
            yield pa.table({self.column: _blocks.numpy_to_column(np.ascontiguousarray(data))})


def range_tasks(n: int, override: int | None, column: str = "id",
                shape: tuple[int, ...] | None = None) -> list[RangeTask]:
    if n < 0:
        raise ValueError(f"range needs n >= 0, got {n}")
    row_bytes = 8 * (int(np.prod(shape)) if shape else 1)
    blocks = default_num_blocks(n * row_bytes, n, override)
    bounds = np.linspace(0, n, blocks + 1).astype(np.int64) if n else np.array([0, 0])
    return [RangeTask(int(a), int(b), column, shape) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def split_table(table: pa.Table, override: int | None) -> list[pa.Table]:
    n = default_num_blocks(_blocks.size_bytes(table), table.num_rows, override)
    bounds = np.linspace(0, table.num_rows, n + 1).astype(np.int64)
    return [_blocks.compact(table.slice(int(a), int(b - a)))
            for a, b in zip(bounds[:-1], bounds[1:], strict=False)] or [table]


# --- filesystems and paths --------------------------------------------------------------------


def resolve_filesystem(path: str, filesystem: Any) -> tuple[Any, str]:
    """A pyarrow filesystem and the path within it (fsspec filesystems are wrapped)."""
    import pyarrow.fs as pafs

    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
        if "://" in path:
            path = path.split("://", 1)[1]
        return filesystem, path
    if "://" in path and not path.startswith("file://"):
        fs, inner = pafs.FileSystem.from_uri(path)
        return fs, inner
    if path.startswith("file://"):
        path = path[len("file://"):]
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def expand_paths(paths: str | Sequence[str], filesystem: Any, file_extensions: Sequence[str] | None
                 ) -> tuple[Any, list[tuple[str, int]]]:
    """Every file ``paths`` names (files, directories walked recursively, globs), with its size;
    FileNotFoundError for a path that matches nothing."""
    import pyarrow.fs as pafs

    if isinstance(paths, (str, os.PathLike)):
        paths = [str(paths)]
    if not paths:
        raise ValueError("no paths given to read")
    fs = None
    out: list[tuple[str, int]] = []
    for raw in paths:
        fs_i, path = resolve_filesystem(str(raw), filesystem)
        fs = fs or fs_i
        if any(ch in path for ch in "*?["):
            base = path
            while any(ch in base for ch in "*?["):
                base = os.path.dirname(base)
            infos = fs_i.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            found = [(i.path, i.size) for i in infos if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, path)]
            if not found:
                raise FileNotFoundError(f"no files match {raw!r}")
            out.extend(sorted(found))
            continue
        info = fs_i.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"no such file or directory: {raw!r}")
        if info.type == pafs.FileType.Directory:
            infos = fs_i.get_file_info(pafs.FileSelector(path, recursive=True))
            files = sorted((i.path, i.size) for i in infos if i.type == pafs.FileType.File
                           and not any(part.startswith((".", "_")) for part in
                                       os.path.relpath(i.path, path).split("/")))
            out.extend(files)
        else:
            out.append((path, info.size))
    if file_extensions is not None:
        exts = tuple("." + e.lstrip(".").lower() for e in file_extensions)
        out = [(p, s) for p, s in out if p.lower().endswith(exts)]
    if not out:
        raise FileNotFoundError(f"no files to read in {list(paths)}")
    return fs, out


class FileReadTask:
    """Read some files with ``read_file(fs, path) -> Iterator[Table]``; optionally add a ``path`` column."""

    def __init__(self, fs: Any, paths: list[str], read_file: Callable[[Any, str], Iterator[pa.Table]],
                 include_paths: bool) -> None:
        self.fs, self.paths, self.read_file, self.include_paths = fs, paths, read_file, include_paths

    def __call__(self) -> Iterator[pa.Table]:
        for path in self.paths:
            for block in self.read_file(self.fs, path):
                if self.include_paths:
                    block = block.append_column("path", pa.array([path] * block.num_rows, pa.string()))
                yield block


def file_tasks(paths: str | Sequence[str], filesystem: Any, read_file: Callable[[Any, str], Iterator[pa.Table]],
               include_paths: bool, override: int | None, file_extensions: Sequence[str] | None = None
               ) -> list[FileReadTask]:
    fs, files = expand_paths(paths, filesystem, file_extensions)
    n = len(files) if override is None else max(1, min(override, len(files)))
    groups = [[p for p, _ in files[i::n]] for i in range(n)]
    return [FileReadTask(fs, g, read_file, include_paths) for g in groups if g]


def _open(fs: Any, path: str) -> Any:
    return fs.open_input_stream(path)


# --- formats ---------------------------------------------------------------------------------


class ReadCSV:
    def __init__(self, arrow_args: dict[str, Any]) -> None:
        self.arrow_args = arrow_args

    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        import pyarrow.csv as pacsv

        with _open(fs, path) as f:
            yield pacsv.read_csv(f, **self.arrow_args)


class ReadJSON:
    """JSON lines, or a file holding one JSON array of objects."""

    def __init__(self, arrow_args: dict[str, Any]) -> None:
        self.arrow_args = arrow_args

    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        import pyarrow.json as pajson

        with _open(fs, path) as f:
            data = f.read()
        if data.lstrip()[:1] == b"[":
            yield _blocks.from_rows(json.loads(data))
        else:
            yield pajson.read_json(io.BytesIO(data), **self.arrow_args)


class ReadText:
    def __init__(self, encoding: str, drop_empty_lines: bool) -> None:
        self.encoding, self.drop_empty_lines = encoding, drop_empty_lines

    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        with _open(fs, path) as f:
            lines = f.read().decode(self.encoding).splitlines()
        if self.drop_empty_lines:
            lines = [ln for ln in lines if ln.strip()]
        yield pa.table({"text": pa.array(lines, pa.string())})


class ReadNumpy:
    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        with _open(fs, path) as f:
            arr = np.load(io.BytesIO(f.read()), allow_pickle=False)
        yield pa.table({"data": _blocks.numpy_to_column(arr)})


class ReadBinary:
    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        with _open(fs, path) as f:
            yield pa.table({"bytes": pa.array([f.read()], pa.binary())})


class ReadImage:
    def __init__(self, size: tuple[int, int] | None, mode: str | None) -> None:
        self.size, self.mode = size, mode

    def __call__(self, fs: Any, path: str) -> Iterator[pa.Table]:
        from PIL import Image

        with _open(fs, path) as f:
            img: Any = Image.open(io.BytesIO(f.read()))
            if self.mode is not None:
                img = img.convert(self.mode)
            if self.size is not None:
                img = img.resize((self.size[1], self.size[0]))
            arr = np.asarray(img)
        yield pa.table({"image": _blocks.numpy_to_column(arr[None])})


class ParquetTask:
    """Some row groups of some parquet files, with a column projection and a filter."""

    def __init__(self, fs: Any, pieces: list[tuple[str, list[int]]], columns: list[str] | None, filter: Any,
                 include_paths: bool) -> None:
        self.fs, self.pieces, self.columns, self.filter, self.include_paths = fs, pieces, columns, filter, include_paths

    def __call__(self) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq

        for path, groups in self.pieces:
            with self.fs.open_input_file(path) as f:
                pf = pq.ParquetFile(f)
                cols = self.columns
                if self.filter is not None and cols is not None:
                    cols = None
                table = pf.read_row_groups(groups, columns=cols)
            if self.filter is not None:
                table = table.filter(self.filter)
                if self.columns is not None:
                    table = table.select(self.columns)
            if self.include_paths:
                table = table.append_column("path", pa.array([path] * table.num_rows, pa.string()))
            yield table


def parquet_tasks(paths: str | Sequence[str], filesystem: Any, columns: list[str] | None, filter: Any,
                  include_paths: bool, override: int | None) -> tuple[list[ParquetTask], pa.Schema]:
    import pyarrow.parquet as pq

    fs, files = expand_paths(paths, filesystem, None)
    files = [(p, s) for p, s in files if not p.endswith((".crc", "_SUCCESS"))]
    groups: list[tuple[str, int, int]] = []  # path, row group, bytes
    schema = None
    for path, _ in files:
        with fs.open_input_file(path) as f:
            md = pq.ParquetFile(f).metadata
            if schema is None:
                schema = md.schema.to_arrow_schema()
            for g in range(md.num_row_groups):
                groups.append((path, g, md.row_group(g).total_byte_size))
    if schema is not None and columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise ValueError(f"read_parquet: no column {missing[0]!r} in {files[0][0]} (columns: {schema.names})")
        schema = pa.schema([schema.field(c) for c in columns])
    total = sum(b for _, _, b in groups)
    if override is not None:
        n = max(1, min(override, len(groups)))
    else:
        n = max(1, min(len(groups), max(len(files), math.ceil(total / (64 * 2**20)),
                                         min(len(groups), 2 * int(os.cpu_count() or 1)))))
    per = [groups[math.floor(i * len(groups) / n):math.floor((i + 1) * len(groups) / n)] for i in range(n)]
    tasks = []
    for chunk in per:
        pieces: list[tuple[str, list[int]]] = []
        for path, g, _ in chunk:
            if pieces and pieces[-1][0] == path:
                pieces[-1][1].append(g)
            else:
                pieces.append((path, [g]))
        if pieces:
            tasks.append(ParquetTask(fs, pieces, columns, filter, include_paths))
    if include_paths and schema is not None:
        schema = schema.append(pa.field("path", pa.string()))
    return tasks, schema if schema is not None else pa.schema([])
