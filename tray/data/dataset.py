"""Dataset: Ray Data's lazy, streaming dataset over pyarrow blocks in tray's object store."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

import tray

from . import _blocks, _plan, _rows, _shuffle, _transforms
from ._executor import Bundle, ExecStats, execute, meta_of
from .aggregate import AggregateFn, Count, Max, Mean, Min, Std, Sum
from .iterator import DataIterator, streaming_split


class ActorPoolStrategy:
    """Run a map in a pool of actors: a fixed ``size``, or autoscaling ``min_size``..``max_size``."""

    def __init__(self, *, size: int | None = None, min_size: int | None = None, max_size: int | None = None,
                 max_tasks_in_flight_per_actor: int | None = None) -> None:
        if size is not None:
            if min_size is not None or max_size is not None:
                raise ValueError("ActorPoolStrategy: give size, or min_size/max_size, not both")
            min_size = max_size = size
        min_size = 1 if min_size is None else min_size
        max_size = max(min_size, 1) if max_size is None else max_size
        self.min_size, self.max_size = min_size, max_size
        self.max_tasks_in_flight_per_actor = max_tasks_in_flight_per_actor or 4
        _plan.ActorCompute(min_size, max_size, self.max_tasks_in_flight_per_actor)  # validates

    def __repr__(self) -> str:
        return f"ActorPoolStrategy(min_size={self.min_size}, max_size={self.max_size})"


class TaskPoolStrategy:
    """Run a map as tasks (the default for functions), at most ``size`` at once."""

    def __init__(self, size: int | None = None) -> None:
        _plan.TaskCompute(size)  # validates
        self.size = size

    def __repr__(self) -> str:
        return f"TaskPoolStrategy(size={self.size})"


class Schema:
    """A dataset's column names and types (``.names``, ``.types``, ``.base_schema``)."""

    def __init__(self, base_schema: pa.Schema) -> None:
        self.base_schema = base_schema

    @property
    def names(self) -> list[str]:
        return list(self.base_schema.names)

    @property
    def types(self) -> list[pa.DataType]:
        return list(self.base_schema.types)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.base_schema == other.base_schema

    def __repr__(self) -> str:
        w = max([len("Column")] + [len(n) for n in self.names])
        lines = [f"{'Column':<{w}}  Type", f"{'------':<{w}}  ----"]
        lines += [f"{n:<{w}}  {t}" for n, t in zip(self.names, self.types, strict=False)]
        return "\n".join(lines)


def _compute_of(fn: Any, compute: Any, concurrency: Any, max_tasks: int | None = None
                ) -> _plan.TaskCompute | _plan.ActorCompute:
    is_class = isinstance(fn, type)
    if isinstance(compute, ActorPoolStrategy):
        if not is_class and concurrency is not None:
            raise ValueError("give compute= or concurrency=, not both")
        return _plan.ActorCompute(compute.min_size, compute.max_size, compute.max_tasks_in_flight_per_actor)
    if compute not in (None, "tasks") and not isinstance(compute, TaskPoolStrategy):
        raise ValueError(f"compute must be an ActorPoolStrategy or TaskPoolStrategy, got {compute!r}")
    if isinstance(compute, TaskPoolStrategy) or compute == "tasks":
        if is_class:
            raise ValueError(f"{fn.__name__} is a callable class: it runs in an actor pool "
                             "(compute=ActorPoolStrategy(...)), not a task pool")
        return _plan.TaskCompute(compute.size if isinstance(compute, TaskPoolStrategy) else None)
    if is_class:
        if concurrency is None:
            raise ValueError("a callable class runs in an actor pool: pass concurrency=N (or (min, max)) "
                             "or compute=ActorPoolStrategy(...)")
        if isinstance(concurrency, int):
            return _plan.ActorCompute(concurrency, concurrency)
        if isinstance(concurrency, tuple) and len(concurrency) == 2:
            return _plan.ActorCompute(int(concurrency[0]), int(concurrency[1]))
        raise ValueError(f"concurrency must be an int or a (min, max) tuple, got {concurrency!r}")
    if concurrency is not None and not isinstance(concurrency, int):
        raise ValueError(f"for a function, concurrency is the most tasks at once (an int), got {concurrency!r}")
    return _plan.TaskCompute(concurrency)


def _column_compute(compute: Any, concurrency: int | None) -> _plan.TaskCompute:
    """The task pool of a column edit: ``concurrency`` tasks at most (``compute``: Ray's older form)."""
    if isinstance(compute, TaskPoolStrategy):
        if concurrency is None:
            concurrency = compute.size
    elif compute not in (None, "tasks"):
        raise ValueError(f"column edits run as tasks: compute must be a TaskPoolStrategy, got {compute!r}")
    if concurrency is not None and not isinstance(concurrency, int):
        raise ValueError(f"concurrency must be an int, got {concurrency!r}")
    return _plan.TaskCompute(concurrency)


_RESOURCE_ARGS = ("num_cpus", "num_gpus", "resources", "memory", "scheduling_strategy", "max_retries")


def _remote_args(num_cpus: Any, num_gpus: Any, extra: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    args: dict[str, Any] = {}
    if num_cpus is not None:
        args["num_cpus"] = num_cpus
    if num_gpus is not None:
        args["num_gpus"] = num_gpus
    for k, v in extra.items():
        if k not in _RESOURCE_ARGS:
            raise TypeError(f"unexpected argument {k!r}")
        args[k] = v
    return tuple(sorted((k, v if not isinstance(v, dict) else tuple(sorted(v.items()))) for k, v in args.items()))


def _freeze_back(args: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, dict(v) if k == "resources" else v) for k, v in args)


class Dataset:
    """A lazy dataset: transforms add operators; consuming runs them, streaming.

    Built with ``tray.data.range/from_*/read_*``; the operators run as tray tasks (or actor
    pools) over pyarrow blocks held in the object store.
    """

    def __init__(self, plan: _plan.Plan, columns: Sequence[str] | None = None) -> None:
        self._plan = plan
        self._columns = list(columns) if columns is not None else None
        self._last_stats: ExecStats | None = None
        self._uuid = uuid.uuid4().hex[:8]

    # --- plumbing -----------------------------------------------------------------------------

    def _with(self, op: _plan.Op, columns: Sequence[str] | None = None, keep_columns: bool = False) -> Dataset:
        cols = self._columns if keep_columns else columns
        return Dataset(self._plan.with_op(op), cols)

    def _check_columns(self, cols: Sequence[str], what: str) -> None:
        if self._columns is not None:
            missing = [c for c in cols if c not in self._columns]
            if missing:
                raise ValueError(f"{what}: no column {missing[0]!r} in the dataset (columns: {self._columns})")

    def _execute(self) -> Iterator[Bundle]:
        stats = ExecStats()
        self._last_stats = stats
        return execute(_plan.Plan(self._plan.source, tuple(_freeze_args(op) for op in self._plan.ops)), stats)

    def _bundles(self) -> list[Bundle]:
        return list(self._execute())

    # --- transforms ---------------------------------------------------------------------------

    def map(self, fn: Callable[..., Any], *, compute: Any = None, fn_args: Sequence[Any] | None = None,
            fn_kwargs: Mapping[str, Any] | None = None, fn_constructor_args: Sequence[Any] | None = None,
            fn_constructor_kwargs: Mapping[str, Any] | None = None, num_cpus: float | None = None,
            num_gpus: float | None = None, concurrency: Any = None, **ray_remote_args: Any) -> Dataset:
        """Apply ``fn`` to each row (a dict) -> one row."""
        return self._map_op("Map", fn, lambda f: _transforms.MapRows(f, tuple(fn_args or ()), dict(fn_kwargs or {})),
                            compute, concurrency, fn_constructor_args, fn_constructor_kwargs, num_cpus, num_gpus,
                            ray_remote_args)

    def flat_map(self, fn: Callable[..., Any], *, compute: Any = None, fn_args: Sequence[Any] | None = None,
                 fn_kwargs: Mapping[str, Any] | None = None, fn_constructor_args: Sequence[Any] | None = None,
                 fn_constructor_kwargs: Mapping[str, Any] | None = None, num_cpus: float | None = None,
                 num_gpus: float | None = None, concurrency: Any = None, **ray_remote_args: Any) -> Dataset:
        """Apply ``fn`` to each row -> a list of rows."""
        return self._map_op("FlatMap", fn,
                            lambda f: _transforms.FlatMap(f, tuple(fn_args or ()), dict(fn_kwargs or {})),
                            compute, concurrency, fn_constructor_args, fn_constructor_kwargs, num_cpus, num_gpus,
                            ray_remote_args)

    def filter(self, fn: Callable[..., Any] | None = None, *, expr: str | None = None, compute: Any = None,
               fn_args: Sequence[Any] | None = None, fn_kwargs: Mapping[str, Any] | None = None,
               fn_constructor_args: Sequence[Any] | None = None,
               fn_constructor_kwargs: Mapping[str, Any] | None = None, num_cpus: float | None = None,
               num_gpus: float | None = None, concurrency: Any = None, **ray_remote_args: Any) -> Dataset:
        """Keep the rows for which ``fn(row)`` is true, or which satisfy ``expr`` (e.g. ``"x > 2"``)."""
        if (fn is None) == (expr is None):
            raise ValueError("filter needs exactly one of fn and expr")
        if expr is not None:
            op = _plan.MapOp(f"Filter({expr})", _transforms.Filter(expr=expr), _column_compute(compute, concurrency),
                             _remote_args(num_cpus, num_gpus, ray_remote_args))
            return self._with(op, keep_columns=True)
        ds = self._map_op("Filter", fn,
                          lambda f: _transforms.Filter(f, args=tuple(fn_args or ()), kwargs=dict(fn_kwargs or {})),
                          compute, concurrency, fn_constructor_args, fn_constructor_kwargs, num_cpus, num_gpus,
                          ray_remote_args)
        ds._columns = self._columns
        return ds

    def map_batches(self, fn: Callable[..., Any], *, batch_size: int | None | str = "default",
                    compute: Any = None, batch_format: str | None = "default", zero_copy_batch: bool = False,
                    fn_args: Sequence[Any] | None = None, fn_kwargs: Mapping[str, Any] | None = None,
                    fn_constructor_args: Sequence[Any] | None = None,
                    fn_constructor_kwargs: Mapping[str, Any] | None = None, num_cpus: float | None = None,
                    num_gpus: float | None = None, concurrency: Any = None, **ray_remote_args: Any) -> Dataset:
        """Apply ``fn`` to batches of ``batch_size`` rows (``None``: whole blocks) in ``batch_format``
        ("numpy": a dict of ndarrays, "pandas", "pyarrow"); ``fn`` returns (or yields) batches. A
        callable class is built once per actor of a pool (``concurrency=N`` / ``(min, max)`` or
        ``compute=ActorPoolStrategy(...)``), with ``fn_constructor_args``."""
        fmt = _blocks.check_batch_format(batch_format)
        if batch_size == "default":
            batch_size = 1024 if num_gpus is None else None
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        return self._map_op(
            "MapBatches", fn,
            lambda f: _transforms.MapBatches(f, batch_size, fmt, zero_copy_batch, tuple(fn_args or ()),
                                             dict(fn_kwargs or {})),
            compute, concurrency, fn_constructor_args, fn_constructor_kwargs, num_cpus, num_gpus, ray_remote_args)

    def _map_op(self, kind: str, fn: Any, make: Callable[[Any], Any], compute: Any, concurrency: Any,
                ctor_args: Any, ctor_kwargs: Any, num_cpus: Any, num_gpus: Any, extra: Mapping[str, Any]) -> Dataset:
        if not callable(fn):
            raise TypeError(f"{kind} needs a function or a callable class, got {type(fn).__name__}")
        comp = _compute_of(fn, compute, concurrency)
        name = f"{kind}({_transforms.fn_name(fn)})"
        args = _remote_args(num_cpus, num_gpus, extra)
        if isinstance(fn, type):
            init = _transforms.CallableClass(fn, tuple(ctor_args or ()), dict(ctor_kwargs or {}), make)
            op = _plan.MapOp(name, _identity, comp, args, init)
        else:
            if ctor_args or ctor_kwargs:
                raise ValueError("fn_constructor_args are for callable classes")
            if isinstance(comp, _plan.ActorCompute):
                fixed = fn
                init = _transforms.CallableClass(_Const, (fixed,), {}, make)
                op = _plan.MapOp(name, _identity, comp, args, init)
            else:
                op = _plan.MapOp(name, make(fn), comp, args)
        return self._with(op)

    def add_column(self, col: str, fn: Callable[[Any], Any], *, batch_format: str | None = "pandas",
                   compute: Any = None, concurrency: Any = None, **ray_remote_args: Any) -> Dataset:
        """Add (or replace) column ``col`` with ``fn(batch)``'s values."""
        fmt = _blocks.check_batch_format(batch_format)
        op = _plan.MapOp(f"AddColumn({col})", _transforms.AddColumn(col, fn, fmt),
                         _column_compute(compute, concurrency), _remote_args(None, None, ray_remote_args))
        cols = None if self._columns is None else self._columns + ([col] if col not in self._columns else [])
        return self._with(op, cols)

    def drop_columns(self, cols: list[str], *, compute: Any = None, concurrency: Any = None,
                     **ray_remote_args: Any) -> Dataset:
        self._check_columns(cols, "drop_columns")
        op = _plan.MapOp("DropColumns", _transforms.DropColumns(cols), _column_compute(compute, concurrency),
                         _remote_args(None, None, ray_remote_args))
        return self._with(op, None if self._columns is None else [c for c in self._columns if c not in cols])

    def select_columns(self, cols: list[str] | str, *, compute: Any = None, concurrency: Any = None,
                       **ray_remote_args: Any) -> Dataset:
        cols = [cols] if isinstance(cols, str) else list(cols)
        self._check_columns(cols, "select_columns")
        op = _plan.MapOp("SelectColumns", _transforms.SelectColumns(cols), _column_compute(compute, concurrency),
                         _remote_args(None, None, ray_remote_args))
        return self._with(op, cols)

    def rename_columns(self, names: Mapping[str, str] | list[str], *, concurrency: Any = None,
                       **ray_remote_args: Any) -> Dataset:
        if isinstance(names, Mapping):
            self._check_columns(list(names), "rename_columns")
            cols = None if self._columns is None else [names.get(c, c) for c in self._columns]
        else:
            cols = list(names)
        op = _plan.MapOp("RenameColumns", _transforms.RenameColumns(names), _column_compute(None, concurrency),
                         _remote_args(None, None, ray_remote_args))
        return self._with(op, cols)

    def limit(self, limit: int) -> Dataset:
        return self._with(_plan.Limit(limit), keep_columns=True)

    def random_shuffle(self, *, seed: int | None = None, num_blocks: int | None = None, **ray_remote_args: Any
                       ) -> Dataset:
        return self._with(_plan.AllToAll("RandomShuffle", _Shuffle(seed, num_blocks)), keep_columns=True)

    def randomize_block_order(self, *, seed: int | None = None) -> Dataset:
        return self._with(_plan.AllToAll("RandomizeBlockOrder", _BlockOrder(seed)), keep_columns=True)

    def repartition(self, num_blocks: int, *, shuffle: bool = False, **kwargs: Any) -> Dataset:
        if num_blocks < 1:
            raise ValueError(f"repartition needs num_blocks >= 1, got {num_blocks}")
        run = _Shuffle(None, num_blocks) if shuffle else _Repartition(num_blocks)
        return self._with(_plan.AllToAll("Repartition", run), keep_columns=True)

    def sort(self, key: str | list[str], descending: bool | list[bool] = False) -> Dataset:
        keys = [key] if isinstance(key, str) else list(key)
        if not keys:
            raise ValueError("sort needs at least one key")
        desc = [descending] * len(keys) if isinstance(descending, bool) else list(descending)
        if len(desc) != len(keys):
            raise ValueError(f"sort: {len(desc)} descending flags for {len(keys)} keys")
        self._check_columns(keys, "sort")
        return self._with(_plan.AllToAll("Sort", _Sort(keys, desc)), keep_columns=True)

    def groupby(self, key: str | list[str] | None) -> GroupedData:
        keys = [] if key is None else ([key] if isinstance(key, str) else list(key))
        self._check_columns(keys, "groupby")
        return GroupedData(self, keys)

    def aggregate(self, *aggs: AggregateFn) -> Any:
        """Aggregate the whole dataset: a dict of the results (one value when one aggregation)."""
        row = GroupedData(self, []).aggregate(*aggs).take_all()
        return row[0] if row else None

    def unique(self, column: str) -> list[Any]:
        self._check_columns([column], "unique")
        return [r[column] for r in self.select_columns([column]).groupby(column).count().take_all()]

    def union(self, *other: Dataset) -> Dataset:
        return self._with(_plan.Union(tuple(o._plan for o in other)), keep_columns=True)

    def zip(self, other: Dataset) -> Dataset:
        return self._with(_plan.Zip(other._plan))

    def join(self, ds: Dataset, join_type: str, num_partitions: int, on: tuple[str, ...] = ("id",),
             right_on: tuple[str, ...] | None = None, left_suffix: str | None = None,
             right_suffix: str | None = None, **kwargs: Any) -> Dataset:
        """Join with ``ds`` on key columns (``join_type``: inner, left_outer, right_outer, full_outer)."""
        how = {"inner": "inner", "left_outer": "left", "right_outer": "right", "full_outer": "outer"}
        if join_type not in how:
            raise ValueError(f"join_type must be one of {list(how)}, got {join_type!r}")
        self._check_columns(list(on), "join")
        ds._check_columns(list(right_on or on), "join")
        run = _Join(ds._plan, how[join_type], num_partitions, list(on), list(right_on or on),
                    left_suffix, right_suffix)
        return self._with(_plan.AllToAll(f"Join({join_type})", run))

    def random_sample(self, fraction: float, *, seed: int | None = None) -> Dataset:
        if not 0 <= fraction <= 1:
            raise ValueError(f"random_sample needs a fraction in [0, 1], got {fraction}")
        return self.map_batches(_Sample(fraction, seed), batch_format="pyarrow", batch_size=None)

    # --- splits --------------------------------------------------------------------------------

    def split(self, n: int, *, equal: bool = False, locality_hints: Any = None) -> list[MaterializedDataset]:
        if n < 1:
            raise ValueError(f"split needs n >= 1, got {n}")
        bundles = self._bundles()
        total = sum(m.num_rows for _, m in bundles)
        if equal:
            sizes = [total // n] * n
        else:
            sizes = _rows.even_sizes(total, n)
        return [MaterializedDataset(p) for p in _split_sizes(bundles, sizes)]

    def split_at_indices(self, indices: list[int]) -> list[MaterializedDataset]:
        bundles = self._bundles()
        total = sum(m.num_rows for _, m in bundles)
        return [MaterializedDataset(p) for p in _split_sizes(bundles, _rows.split_indices(total, indices))]

    def split_proportionately(self, proportions: list[float]) -> list[MaterializedDataset]:
        bundles = self._bundles()
        total = sum(m.num_rows for _, m in bundles)
        return [MaterializedDataset(p) for p in _split_sizes(bundles, _rows.proportion_sizes(total, proportions))]

    def train_test_split(self, test_size: float | int, *, shuffle: bool = False, seed: int | None = None
                         ) -> tuple[MaterializedDataset, MaterializedDataset]:
        ds = self.random_shuffle(seed=seed) if shuffle else self
        bundles = ds._bundles()
        total = sum(m.num_rows for _, m in bundles)
        if isinstance(test_size, float):
            if not 0 < test_size < 1:
                raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size}")
            n_test = int(np.ceil(total * test_size))
        else:
            if not 0 < test_size < total:
                raise ValueError(f"test_size as a count must be in (0, {total}), got {test_size}")
            n_test = test_size
        train, test = _split_sizes(bundles, [total - n_test, n_test])
        return MaterializedDataset(train), MaterializedDataset(test)

    def streaming_split(self, n: int, *, equal: bool = False, locality_hints: Any = None) -> list[DataIterator]:
        """``n`` iterators sharing one streaming execution; each row goes to exactly one of them
        (``equal``: each gets the same number of rows, a remainder under ``n`` dropped). Consume
        them concurrently (e.g. one per Train worker); every epoch, all of them."""
        return streaming_split(self, n, equal)

    # --- consuming -----------------------------------------------------------------------------

    def iterator(self) -> DataIterator:
        ds = self
        it = DataIterator(lambda: (ref for ref, _ in ds._execute()), name="Dataset")
        return it

    def iter_batches(self, **kwargs: Any) -> Iterator[Any]:
        return self.iterator().iter_batches(**kwargs)

    def iter_torch_batches(self, **kwargs: Any) -> Iterator[Any]:
        return self.iterator().iter_torch_batches(**kwargs)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        return self.iterator().iter_rows()

    def take(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(itertools.islice(self.limit(limit).iter_rows(), limit))

    def take_all(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = list(self.iter_rows())
        if limit is not None and len(rows) > limit:
            raise ValueError(f"the dataset has more than the given limit of {limit} rows")
        return rows

    def take_batch(self, batch_size: int = 20, *, batch_format: str | None = "default") -> Any:
        for batch in self.limit(batch_size).iter_batches(batch_size=batch_size, batch_format=batch_format):
            return batch
        raise ValueError("the dataset is empty")

    def show(self, limit: int = 20) -> None:
        for row in self.take(limit):
            print(row)

    def count(self) -> int:
        if not self._plan.ops and self._plan.source.bundles is not None:
            return sum(m.num_rows for _, m in self._plan.source.bundles)
        return sum(m.num_rows for _, m in self._execute())

    def schema(self, fetch_if_missing: bool = True) -> Schema | None:
        for _, meta in self.limit(1)._execute() if self._plan.source.bundles is None else self._execute():
            if meta.schema is not None:
                return Schema(meta.schema)
        return None

    def columns(self, fetch_if_missing: bool = True) -> list[str] | None:
        if self._columns is not None:
            return list(self._columns)
        s = self.schema()
        return s.names if s is not None else None

    def num_blocks(self) -> int:
        return len(self._bundles())

    def size_bytes(self) -> int:
        return sum(m.size_bytes for _, m in self._execute())

    def input_files(self) -> list[str]:
        files: list[str] = []
        for t in self._plan.source.read_tasks or ():
            for p in getattr(t, "paths", ()) or [p for p, _ in getattr(t, "pieces", ())]:
                if p not in files:
                    files.append(p)
        return files

    def to_pandas(self, limit: int | None = None) -> Any:
        import pandas as pd

        blocks = [tray.get(ref) for ref, _ in self._execute()]
        table = _blocks.concat(blocks)
        if limit is not None and table.num_rows > limit:
            raise ValueError(f"the dataset has more than the given limit of {limit} rows")
        return _blocks.to_pandas(table) if table.num_columns else pd.DataFrame()

    def to_arrow_refs(self) -> list[Any]:
        return [ref for ref, _ in self._execute()]

    def to_pandas_refs(self) -> list[Any]:
        conv = tray.remote(_blocks.to_pandas)
        return [conv.remote(ref) for ref, _ in self._execute()]

    def to_numpy_refs(self, *, column: str | None = None) -> list[Any]:
        conv = tray.remote(_to_numpy)
        return [conv.remote(ref, column) for ref, _ in self._execute()]

    def materialize(self) -> MaterializedDataset:
        bundles = self._bundles()
        out = MaterializedDataset(bundles, self._columns)
        out._last_stats = self._last_stats
        return out

    def stats(self) -> str:
        if self._last_stats is None:
            return "Dataset has not been executed yet"
        return self._last_stats.to_string()

    # --- aggregations over the whole dataset ----------------------------------------------------

    def _agg1(self, agg_cls: type, on: str | list[str] | None, ignore_nulls: bool, **kw: Any) -> Any:
        cols = [on] if isinstance(on, str) or on is None else list(on)
        if cols == [None]:
            cols = self.columns() or []
        aggs = [agg_cls(on=c, ignore_nulls=ignore_nulls, **kw) for c in cols]
        result = self.aggregate(*aggs)
        if result is None:
            return None
        if isinstance(on, str):
            return result[aggs[0].name]
        return result

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._agg1(Sum, on, ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._agg1(Min, on, ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._agg1(Max, on, ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Any:
        return self._agg1(Mean, on, ignore_nulls)

    def std(self, on: str | list[str] | None = None, ddof: int = 1, ignore_nulls: bool = True) -> Any:
        return self._agg1(Std, on, ignore_nulls, ddof=ddof)

    # --- writes --------------------------------------------------------------------------------

    def _write(self, path: str, filesystem: Any, fmt: str, writer: Callable[[Any, str, pa.Table], None]) -> None:
        from ._read import resolve_filesystem

        fs, base = resolve_filesystem(path, filesystem)
        fs.create_dir(base, recursive=True)
        task = tray.remote(_write_block)
        pending = []
        for i, (ref, meta) in enumerate(self._execute()):
            if meta.num_rows == 0:
                continue
            name = f"{base}/{self._uuid}_{i:06d}_000000.{fmt}"
            pending.append(task.remote(fs, name, ref, writer))
            if len(pending) >= 8:
                tray.get(pending.pop(0))
        tray.get(pending)

    def write_parquet(self, path: str, *, filesystem: Any = None, **arrow_parquet_args: Any) -> None:
        self._write(path, filesystem, "parquet", _ParquetWriter(arrow_parquet_args))

    def write_csv(self, path: str, *, filesystem: Any = None, **arrow_csv_args: Any) -> None:
        self._write(path, filesystem, "csv", _CSVWriter(arrow_csv_args))

    def write_json(self, path: str, *, filesystem: Any = None, **pandas_json_args: Any) -> None:
        self._write(path, filesystem, "json", _JSONWriter(pandas_json_args))

    def write_numpy(self, path: str, *, column: str, filesystem: Any = None) -> None:
        self._check_columns([column], "write_numpy")
        self._write(path, filesystem, "npy", _NumpyWriter(column))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(plan={' -> '.join(self._plan.names())})"

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("a Dataset is not iterable: use iter_rows() or iter_batches()")


class MaterializedDataset(Dataset):
    """A dataset whose blocks are all in the store (what ``materialize()`` and splits return)."""

    def __init__(self, bundles: list[Bundle], columns: Sequence[str] | None = None) -> None:
        super().__init__(_plan.Plan(_plan.Source("FromBlocks", bundles=tuple(bundles))), columns)
        if columns is None and bundles and bundles[0][1].schema is not None:
            self._columns = list(bundles[0][1].schema.names)

    def num_blocks(self) -> int:
        return len(self._plan.source.bundles or ())


class GroupedData:
    """``Dataset.groupby(key)``: aggregations per group, or ``map_groups``."""

    def __init__(self, dataset: Dataset, keys: list[str]) -> None:
        self._ds, self._keys = dataset, keys

    def aggregate(self, *aggs: AggregateFn) -> Dataset:
        if not aggs:
            raise ValueError("aggregate needs at least one aggregation")
        for agg in aggs:
            if not isinstance(agg, AggregateFn):
                raise TypeError(f"not an aggregation: {agg!r}")
            agg.validate(self._ds._columns)
        pre = _plan.MapOp("PartialAggregate", _transforms.PartialAggregate(self._keys, aggs))
        op = _plan.AllToAll("Aggregate", _Aggregate(self._keys, list(aggs)), pre)
        return self._ds._with(op, self._keys + [a.name for a in aggs])

    def _simple(self, cls: type, on: str | list[str] | None, ignore_nulls: bool, **kw: Any) -> Dataset:
        if on is None:
            cols = [c for c in (self._ds.columns() or []) if c not in self._keys]
        else:
            cols = [on] if isinstance(on, str) else list(on)
        return self.aggregate(*[cls(on=c, ignore_nulls=ignore_nulls, **kw) for c in cols])

    def count(self) -> Dataset:
        return self.aggregate(Count())

    def sum(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(Sum, on, ignore_nulls)

    def min(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(Min, on, ignore_nulls)

    def max(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(Max, on, ignore_nulls)

    def mean(self, on: str | list[str] | None = None, ignore_nulls: bool = True) -> Dataset:
        return self._simple(Mean, on, ignore_nulls)

    def std(self, on: str | list[str] | None = None, ddof: int = 1, ignore_nulls: bool = True) -> Dataset:
        return self._simple(Std, on, ignore_nulls, ddof=ddof)

    def map_groups(self, fn: Callable[..., Any], *, compute: Any = None, batch_format: str | None = "default",
                   fn_args: Sequence[Any] | None = None, fn_kwargs: Mapping[str, Any] | None = None,
                   num_cpus: float | None = None, num_gpus: float | None = None, concurrency: Any = None,
                   **ray_remote_args: Any) -> Dataset:
        """``fn`` over each group's rows as one batch (groups never span batches)."""
        if not self._keys:
            raise ValueError("map_groups needs a groupby key")
        fmt = _blocks.check_batch_format(batch_format)
        sorted_ds = self._ds.sort(self._keys)
        return sorted_ds.map_batches(_Groups(fn, self._keys, fmt, tuple(fn_args or ()), dict(fn_kwargs or {})),
                                     batch_size=None, batch_format="pyarrow", num_cpus=num_cpus,
                                     num_gpus=num_gpus, **ray_remote_args)


# --- helpers that travel to workers --------------------------------------------------------------


def _identity(blocks: Iterator[pa.Table]) -> Iterator[pa.Table]:
    return blocks


class _Const:
    """A plain function given an actor pool: 'constructing' it returns the function."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *a: Any, **kw: Any) -> Any:
        return self.fn(*a, **kw)


def _freeze_args(op: _plan.Op) -> _plan.Op:
    return op


class _Shuffle:
    def __init__(self, seed: int | None, num_blocks: int | None) -> None:
        self.seed, self.num_blocks = seed, num_blocks

    def __call__(self, bundles: list[Bundle]) -> list[Bundle]:
        return _shuffle.random_shuffle(bundles, self.seed, self.num_blocks)


class _BlockOrder:
    def __init__(self, seed: int | None) -> None:
        self.seed = seed

    def __call__(self, bundles: list[Bundle]) -> list[Bundle]:
        order = np.random.default_rng(self.seed).permutation(len(bundles))
        return [bundles[i] for i in order]


class _Repartition:
    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, bundles: list[Bundle]) -> list[Bundle]:
        total = sum(m.num_rows for _, m in bundles)
        if not bundles:
            return []
        return _shuffle.slice_rows(bundles, _rows.even_sizes(total, self.n))


class _Sort:
    def __init__(self, keys: list[str], descending: list[bool]) -> None:
        self.keys, self.descending = keys, descending

    def __call__(self, bundles: list[Bundle]) -> list[Bundle]:
        return _shuffle.sort(bundles, self.keys, self.descending)


class _Aggregate:
    def __init__(self, keys: list[str], aggs: list[AggregateFn]) -> None:
        self.keys, self.aggs = keys, aggs

    def __call__(self, partials: list[Bundle]) -> list[Bundle]:
        return _shuffle.aggregate(partials, self.keys, self.aggs)


class _Join:
    def __init__(self, right: _plan.Plan, how: str, parts: int, on: list[str], right_on: list[str],
                 lsuffix: str | None, rsuffix: str | None) -> None:
        self.right, self.how, self.parts, self.on, self.right_on = right, how, parts, on, right_on
        self.lsuffix, self.rsuffix = lsuffix, rsuffix

    def __call__(self, bundles: list[Bundle]) -> list[Bundle]:
        right = list(execute(self.right))
        parts = max(1, self.parts)
        splitter = tray.remote(_hash_split).options(num_returns=parts)
        lparts = [splitter.remote(ref, self.on, parts) for ref, _ in bundles]
        rparts = [splitter.remote(ref, self.right_on, parts) for ref, _ in right]
        if parts == 1:
            lparts, rparts = [[r] for r in lparts], [[r] for r in rparts]
        joiner = tray.remote(_join_part).options(num_returns=2)
        pairs = [joiner.remote(self, len(lparts), *[p[j] for p in lparts], *[p[j] for p in rparts])
                 for j in range(parts)]
        metas = tray.get([m for _, m in pairs])
        return [(b, m) for (b, _), m in zip(pairs, metas, strict=False)]


def _hash_split(block: pa.Table, keys: list[str], parts: int) -> Any:
    import pandas as pd

    if block.num_rows:
        h = pd.util.hash_pandas_object(block.select(keys).to_pandas(), index=False).to_numpy() % parts
    else:
        h = np.zeros(0, np.int64)
    out = tuple(block.filter(pa.array(h == j)) for j in range(parts))
    return out if parts > 1 else out[0]


def _join_part(join: _Join, n_left: int, *parts: pa.Table) -> tuple[pa.Table, Any]:
    left = _blocks.concat(list(parts[:n_left]))
    right = _blocks.concat(list(parts[n_left:]))
    ldf, rdf = _blocks.to_pandas(left), _blocks.to_pandas(right)
    if not len(ldf.columns) or not len(rdf.columns):
        out = pa.table({})
        return out, meta_of(out)
    suffixes = (join.lsuffix or "", join.rsuffix or "_1") if join.lsuffix or join.rsuffix else ("", "_1")
    df = ldf.merge(rdf, how=join.how, left_on=join.on, right_on=join.right_on, suffixes=suffixes)
    out = pa.Table.from_pandas(df, preserve_index=False)
    return out, meta_of(out)


class _Sample:
    def __init__(self, fraction: float, seed: int | None) -> None:
        self.fraction, self.seed, self.calls = fraction, seed, 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.calls += 1
        seed = None if self.seed is None else [self.seed, batch.num_rows, self.calls]
        mask = np.random.default_rng(seed).random(batch.num_rows) < self.fraction
        return batch.filter(pa.array(mask))


class _Groups:
    def __init__(self, fn: Any, keys: list[str], fmt: str, args: tuple, kwargs: dict) -> None:
        self.fn, self.keys, self.fmt, self.args, self.kwargs = fn, keys, fmt, args, kwargs

    def __call__(self, block: pa.Table) -> Iterator[Any]:
        block, groups = _transforms.group_slices(block, self.keys)
        for _, start, length in groups:
            out = self.fn(_blocks.to_batch(block.slice(start, length), self.fmt, writable=True),
                          *self.args, **self.kwargs)
            yield out


def _split_sizes(bundles: list[Bundle], sizes: list[int]) -> list[list[Bundle]]:
    flat = _shuffle.slice_rows(bundles, sizes) if bundles else []
    out = []
    for i, _ in enumerate(sizes):
        out.append([flat[i]] if flat else [])
    return out


def _to_numpy(block: pa.Table, column: str | None) -> Any:
    arrays = _blocks.to_numpy_batch(block)
    return arrays[column] if column is not None else arrays


def _write_block(fs: Any, path: str, block: pa.Table, writer: Callable[[Any, str, pa.Table], None]) -> None:
    writer(fs, path, block)


class _ParquetWriter:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args

    def __call__(self, fs: Any, path: str, block: pa.Table) -> None:
        import pyarrow.parquet as pq

        with fs.open_output_stream(path) as f:
            pq.write_table(block, f, **self.args)


class _CSVWriter:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args

    def __call__(self, fs: Any, path: str, block: pa.Table) -> None:
        import pyarrow.csv as pacsv

        with fs.open_output_stream(path) as f:
            pacsv.write_csv(block, f, **self.args)


class _JSONWriter:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = {"orient": "records", "lines": True, **args}

    def __call__(self, fs: Any, path: str, block: pa.Table) -> None:
        text = _blocks.to_pandas(block).to_json(**self.args)
        with fs.open_output_stream(path) as f:
            f.write(text.encode())


class _NumpyWriter:
    def __init__(self, column: str) -> None:
        self.column = column

    def __call__(self, fs: Any, path: str, block: pa.Table) -> None:
        import io

        buf = io.BytesIO()
        np.save(buf, _blocks.column_to_numpy(block.column(self.column)))
        with fs.open_output_stream(path) as f:
            f.write(buf.getvalue())


def from_blocks(refs: list[Any]) -> MaterializedDataset:
    metas = [meta_of(tray.get(r)) for r in refs]
    return MaterializedDataset(list(zip(refs, metas, strict=False)))
