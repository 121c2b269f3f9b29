"""Resource shapes and a node's resource accounting, as pure logic.

A shape is a mapping from resource name ("CPU", "GPU", "memory" or a custom name) to a
non-negative amount. Amounts are kept in integer units of 1/10,000 so fractional
requests (``num_cpus=0.5``) add and subtract exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

UNIT = 10_000

Shape = Mapping[str, float]


def to_units(shape: Shape) -> dict[str, int]:
    """A shape in exact integer units, without zero entries."""
    out = {}
    for name, amount in shape.items():
        units = round(amount * UNIT)
        if units:
            out[name] = units
    return out


def from_units(units: Mapping[str, int]) -> dict[str, float]:
    """Back to the user's numbers (whole amounts as ints-valued floats, like Ray)."""
    return {name: u / UNIT for name, u in units.items()}


def task_shape(num_cpus: float | None, num_gpus: float | None, memory: float | None,
               resources: Mapping[str, float] | None, default_cpus: float) -> dict[str, float]:
    """The shape a task or actor asks for, from its options (Ray's defaults applied)."""
    shape: dict[str, float] = {"CPU": default_cpus if num_cpus is None else num_cpus}
    if num_gpus:
        shape["GPU"] = num_gpus
    if memory:
        shape["memory"] = memory
    shape.update(resources or {})
    return shape


class Ledger:
    """What a node has and what is free: acquire and release shapes exactly."""

    def __init__(self, total: Shape) -> None:
        self.total = to_units(total)
        self.free = dict(self.total)

    def feasible(self, shape: Mapping[str, int]) -> bool:
        """Could ``shape`` ever fit on this node (given everything free)?"""
        return all(self.total.get(k, 0) >= v for k, v in shape.items())

    def fits(self, shape: Mapping[str, int]) -> bool:
        return all(self.free.get(k, 0) >= v for k, v in shape.items())

    def acquire(self, shape: Mapping[str, int]) -> bool:
        if not self.fits(shape):
            return False
        for k, v in shape.items():
            self.free[k] -= v
        return True

    def add(self, shape: Mapping[str, int]) -> None:
        """New resources (a placement group's bundle): in the total, and free."""
        for k, v in shape.items():
            self.total[k] = self.total.get(k, 0) + v
            self.free[k] = self.free.get(k, 0) + v

    def remove(self, shape: Mapping[str, int]) -> None:
        """Resources that go away (a bundle returned); whoever used them has released them."""
        for k, v in shape.items():
            self.total[k] -= v
            self.free[k] -= v
            if not self.total[k]:
                del self.total[k], self.free[k]

    def release(self, shape: Mapping[str, int]) -> None:
        for k, v in shape.items():
            self.free[k] += v
            if self.free[k] > self.total.get(k, 0):
                raise AssertionError(f"released more {k} than was acquired")


class Instances:
    """Which GPUs of a node (or of a placement group's bundle) are whose, one by one (Ray's
    resource instances), so each task or actor sees its own in ``CUDA_VISIBLE_DEVICES``.
    A fraction of a GPU shares one GPU with other fractions (the first one it fits on);
    whole GPUs take GPUs no one uses."""

    def __init__(self, capacity: Mapping[int, int]) -> None:
        self.capacity = dict(capacity)  # units by GPU id (UNIT each, or a bundle's fraction)
        self.free = dict(capacity)

    def pick(self, units: int) -> list[int] | None:
        """The GPU ids ``units`` would take now (none for no GPUs); None if they do not fit."""
        if units <= 0:
            return []
        if units < UNIT:
            return next(([i] for i, free in self.free.items() if free >= units), None)
        whole = -(-units // UNIT)
        ids = [i for i, free in self.free.items() if free == UNIT][:whole]
        return ids if len(ids) == whole else None

    def take(self, units: int) -> tuple[int, ...] | None:
        ids = self.pick(units)
        if ids is None:
            return None
        for i in ids:
            self.free[i] -= min(units, UNIT)
        return tuple(ids)

    def give(self, ids: tuple[int, ...], units: int) -> None:
        for i in ids:
            self.free[i] += min(units, UNIT)
            if self.free[i] > self.capacity[i]:
                raise AssertionError(f"GPU {i} given back more than was taken")

    def hold(self, units: int) -> GpuHold | None:
        """:meth:`take`, kept with where it came from, to give back with ``release``."""
        ids = self.take(units)
        return None if ids is None else GpuHold(self, ids, units)


class GpuHold(NamedTuple):
    """GPUs a lease (or a placement group's bundle) holds: which, and whose they were."""

    source: Instances
    ids: tuple[int, ...]
    units: int

    def release(self) -> None:
        self.source.give(self.ids, self.units)
