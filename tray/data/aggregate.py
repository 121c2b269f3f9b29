"""Aggregations (Ray's ``ray.data.aggregate``): ``AggregateFn`` for your own, and the built-ins
``Count``, ``Sum``, ``Min``, ``Max``, ``Mean``, ``Std``, ``AbsMax``, ``Quantile``, ``Unique``.

An aggregation is four pure steps on an accumulator: ``init(key)``, ``accumulate_block(acc,
values)`` over one group's rows of a block, ``merge(a, b)`` of two partial results, and
``finalize(acc)``. Blocks are aggregated where they are made (a partial per block) and the
partials are merged after the shuffle, so only one small row per group and block moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["AbsMax", "AggregateFn", "AggregateFnV2", "Count", "Max", "Mean", "Min", "Quantile", "Std", "Sum",
           "Unique"]


class AggregateFn:
    """A user-defined aggregation, as Ray's: ``init(key) -> acc``, ``accumulate_row(acc, row) -> acc``
    (or ``accumulate_block(acc, block) -> acc`` over a pyarrow Table), ``merge(a, b) -> acc``,
    ``finalize(acc) -> value``; the result column is ``name``."""

    def __init__(self, init: Callable[[Any], Any], merge: Callable[[Any, Any], Any],
                 accumulate_row: Callable[[Any, Any], Any] | None = None,
                 accumulate_block: Callable[[Any, Any], Any] | None = None,
                 finalize: Callable[[Any], Any] | None = None, name: str | None = None) -> None:
        if (accumulate_row is None) == (accumulate_block is None):
            raise ValueError("AggregateFn needs exactly one of accumulate_row and accumulate_block")
        self.init = init
        self.merge = merge
        self._accumulate_row = accumulate_row
        self._accumulate_block = accumulate_block
        self.finalize = finalize if finalize is not None else (lambda a: a)
        self.name = name if name is not None else "aggregate"

    def validate(self, columns: list[str] | None) -> None:
        """Raise ValueError when the aggregation names a column the schema lacks."""

    def accumulate_group(self, acc: Any, block: pa.Table) -> Any:
        if self._accumulate_block is not None:
            return self._accumulate_block(acc, block)
        from ._blocks import rows

        assert self._accumulate_row is not None
        for row in rows(block):
            acc = self._accumulate_row(acc, row)
        return acc


class AggregateFnV2(AggregateFn):
    """A built-in aggregation over one column (``on``), nulls ignored unless ``ignore_nulls=False``."""

    _label = "agg"

    def __init__(self, on: str | None = None, ignore_nulls: bool = True, alias_name: str | None = None) -> None:
        self.on = on
        self.ignore_nulls = ignore_nulls
        self.name = alias_name if alias_name is not None else f"{self._label}({on or ''})"

    def validate(self, columns: list[str] | None) -> None:
        if self.on is not None and columns is not None and self.on not in columns:
            raise ValueError(f"{type(self).__name__}: no column {self.on!r} in the dataset (columns: {columns})")
        if self.on is None and not isinstance(self, Count):
            raise ValueError(f"{type(self).__name__} needs the column to aggregate (on=...)")

    def init(self, key: Any) -> Any:
        return None

    def values(self, block: pa.Table) -> tuple[np.ndarray, bool]:
        """The group's values of ``on`` without nulls, and whether a null was seen."""
        col = block.column(self.on)
        nulls = col.null_count
        if nulls:
            col = col.drop_null()
        from ._blocks import column_to_numpy

        return column_to_numpy(col), bool(nulls)

    def accumulate_group(self, acc: Any, block: pa.Table) -> Any:
        vals, had_null = self.values(block)
        if had_null and not self.ignore_nulls:
            return _NULL
        if acc is _NULL:
            return _NULL
        if len(vals) == 0:
            return acc
        part = self.block_state(vals)
        return part if acc is None else self.merge(acc, part)

    def merge(self, a: Any, b: Any) -> Any:
        if a is _NULL or b is _NULL:
            return _NULL
        if a is None:
            return b
        if b is None:
            return a
        return self.merge_states(a, b)

    def finalize(self, acc: Any) -> Any:
        if acc is None or acc is _NULL:
            return None
        return self.final(acc)

    def block_state(self, vals: np.ndarray) -> Any:
        raise NotImplementedError

    def merge_states(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def final(self, acc: Any) -> Any:
        return _py(acc)


class _Null:
    def __repr__(self) -> str:
        return "NULL"


_NULL = _Null()


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class Count(AggregateFnV2):
    """Rows per group (``on=None``), or non-null values of ``on``."""

    _label = "count"

    def __init__(self, on: str | None = None, ignore_nulls: bool = False, alias_name: str | None = None) -> None:
        super().__init__(on, ignore_nulls, alias_name)

    def init(self, key: Any) -> Any:
        return 0

    def accumulate_group(self, acc: Any, block: pa.Table) -> Any:
        if self.on is None:
            return acc + block.num_rows
        col = block.column(self.on)
        return acc + (len(col) - col.null_count if self.ignore_nulls else len(col))

    def merge(self, a: Any, b: Any) -> Any:
        return a + b

    def finalize(self, acc: Any) -> Any:
        return int(acc)


class Sum(AggregateFnV2):
    _label = "sum"

    def block_state(self, vals: np.ndarray) -> Any:
        return vals.sum()

    def merge_states(self, a: Any, b: Any) -> Any:
        return a + b


class Min(AggregateFnV2):
    _label = "min"

    def block_state(self, vals: np.ndarray) -> Any:
        return vals.min()

    def merge_states(self, a: Any, b: Any) -> Any:
        return min(a, b)


class Max(AggregateFnV2):
    _label = "max"

    def block_state(self, vals: np.ndarray) -> Any:
        return vals.max()

    def merge_states(self, a: Any, b: Any) -> Any:
        return max(a, b)


class AbsMax(AggregateFnV2):
    _label = "abs_max"

    def block_state(self, vals: np.ndarray) -> Any:
        return np.abs(vals).max()

    def merge_states(self, a: Any, b: Any) -> Any:
        return max(a, b)


class Mean(AggregateFnV2):
    _label = "mean"

    def block_state(self, vals: np.ndarray) -> Any:
        return (float(vals.sum(dtype=np.float64)), len(vals))

    def merge_states(self, a: Any, b: Any) -> Any:
        return (a[0] + b[0], a[1] + b[1])

    def final(self, acc: Any) -> Any:
        return acc[0] / acc[1]


class Std(AggregateFnV2):
    """Standard deviation with ``ddof`` (1, as Ray and pandas), merged with Chan's formula."""

    _label = "std"

    def __init__(self, on: str | None = None, ddof: int = 1, ignore_nulls: bool = True,
                 alias_name: str | None = None) -> None:
        super().__init__(on, ignore_nulls, alias_name)
        self.ddof = ddof

    def block_state(self, vals: np.ndarray) -> Any:
        v = vals.astype(np.float64, copy=False)
        mean = float(v.mean())
        return (len(v), mean, float(((v - mean) ** 2).sum()))

    def merge_states(self, a: Any, b: Any) -> Any:
        na, ma, m2a = a
        nb, mb, m2b = b
        n = na + nb
        delta = mb - ma
        return (n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n)

    def final(self, acc: Any) -> Any:
        n, _, m2 = acc
        if n - self.ddof <= 0:
            return None
        return math.sqrt(m2 / (n - self.ddof))


class Quantile(AggregateFnV2):
    """The ``q`` quantile (linear interpolation, as numpy's default)."""

    _label = "quantile"

    def __init__(self, on: str | None = None, q: float = 0.5, ignore_nulls: bool = True,
                 alias_name: str | None = None) -> None:
        super().__init__(on, ignore_nulls, alias_name)
        if not 0 <= q <= 1:
            raise ValueError(f"Quantile: q must be in [0, 1], got {q}")
        self.q = q

    def block_state(self, vals: np.ndarray) -> Any:
        return [vals]

    def merge_states(self, a: Any, b: Any) -> Any:
        return a + b

    def final(self, acc: Any) -> Any:
        return _py(np.quantile(np.concatenate(acc), self.q))


class Unique(AggregateFnV2):
    """The distinct values of ``on`` in a group, as a list."""

    _label = "unique"

    def block_state(self, vals: np.ndarray) -> Any:
        return set(vals.tolist())

    def merge_states(self, a: Any, b: Any) -> Any:
        return a | b

    def final(self, acc: Any) -> Any:
        return sorted(acc, key=lambda v: (v is None, v))
