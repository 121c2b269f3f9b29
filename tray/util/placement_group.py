"""Placement groups (Ray's ``ray.util.placement_group``): reserve resources across nodes at once.

A group is a list of *bundles* (resource shapes) reserved atomically with a strategy
(PACK, SPREAD, STRICT_PACK, STRICT_SPREAD); tasks and actors are then scheduled into it
with ``PlacementGroupSchedulingStrategy``. The cluster's control store places the group
and keeps its state; this module is the user's side of it, with Ray's names and
behaviour, so ``from ray.util.placement_group import ...`` code ports as it is.

Arguments are checked at the call, before anything reaches the cluster. A
``bundle_label_selector`` (one Ray label selector per bundle) keeps each bundle on nodes
whose labels match. An option that constrains placement but cannot be honoured yet
(``_max_cpu_fraction_per_node`` below 1) raises NotImplementedError rather than being
silently dropped; ``_soft_target_node_id`` is only a hint and is accepted.
"""

from __future__ import annotations

import os
from numbers import Real
from typing import Any

import trio

from .. import ObjectRef, lowlevel
from ..lowlevel import check_bundles, check_label_selector, check_strategy

__all__ = [
    "PlacementGroup",
    "PlacementGroupID",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]


class PlacementGroupID:
    """A placement group's id: 18 bytes, shown as hex (Ray's ``PlacementGroupID``)."""

    SIZE = 18
    __slots__ = ("_bytes",)

    def __init__(self, id: bytes) -> None:
        if not isinstance(id, bytes) or len(id) != self.SIZE:
            raise ValueError(f"a PlacementGroupID is {self.SIZE} bytes, got {id!r}")
        self._bytes = id

    @classmethod
    def from_random(cls) -> PlacementGroupID:
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def from_hex(cls, hex_id: str) -> PlacementGroupID:
        return cls(bytes.fromhex(hex_id))

    @classmethod
    def nil(cls) -> PlacementGroupID:
        return cls(b"\xff" * cls.SIZE)

    def is_nil(self) -> bool:
        return self._bytes == b"\xff" * self.SIZE

    def binary(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroupID) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        return f"PlacementGroupID({self.hex()})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PlacementGroupID, (self._bytes,))


class PlacementGroup:
    """A handle on a placement group: picklable, equal to any other handle on the same group."""

    def __init__(self, id: PlacementGroupID, bundle_cache: list[dict[str, float]] | None = None) -> None:
        self.id = id
        self.bundle_cache = bundle_cache

    @staticmethod
    def empty() -> PlacementGroup:
        """The handle that stands for "no group"."""
        return PlacementGroup(PlacementGroupID.nil())

    @property
    def is_empty(self) -> bool:
        return self.id.is_nil()

    def ready(self) -> ObjectRef:
        """A ref that resolves (to this group) once the group is placed, for ``tray.get``
        and ``tray.wait``; it raises if the group is removed first."""
        self._check_not_empty("ready")
        return lowlevel.ref_of(_placed, self)

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Wait until the group is placed: True, or False if ``timeout_seconds`` pass first."""
        self._check_not_empty("wait")
        if not isinstance(timeout_seconds, Real) or isinstance(timeout_seconds, bool) or timeout_seconds < 0:
            raise ValueError(f"timeout_seconds must be a number >= 0, got {timeout_seconds!r}")
        pg_id = self.id.hex()

        async def wait() -> bool:
            with trio.move_on_after(float(timeout_seconds)):
                await lowlevel.ask_control("wait_placement_group", pg_id)
                return True
            return False

        return lowlevel.run_in_loop(wait)

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        """The group's bundles, as given (amounts as floats)."""
        self._fill_bundle_cache_if_needed()
        return self.bundle_cache  # type: ignore[return-value]

    @property
    def bundle_count(self) -> int:
        self._fill_bundle_cache_if_needed()
        return len(self.bundle_cache)  # type: ignore[arg-type]

    def _fill_bundle_cache_if_needed(self) -> None:
        if not self.bundle_cache:
            self._check_not_empty("bundle_specs")
            rows = _info(self.id.hex(), None, None)
            if not rows:
                raise ValueError(f"placement group {self.id.hex()} is unknown to the cluster")
            self.bundle_cache = [dict(b) for b in rows[0]["bundles"]]

    def _check_not_empty(self, what: str) -> None:
        if self.is_empty:
            raise ValueError(f"PlacementGroup.{what}: this is the empty placement group (no group at all)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PlacementGroup({self.id.hex()})"


async def _placed(pg: PlacementGroup) -> PlacementGroup:
    """``ready()``'s value: the group, once the control store says it is placed."""
    await lowlevel.ask_control("wait_placement_group", pg.id.hex())
    return pg


def _info(pg_id: str | None, name: str | None, namespace: str | None) -> list[dict[str, Any]]:
    return lowlevel.control_call("placement_group_info", pg_id, name, namespace)


# ------------------------------------------------------------------- the module API


def _check_options(bundles: Any, strategy: Any, name: Any, lifetime: Any, max_cpu_fraction: Any,
                   soft_target_node_id: Any, bundle_label_selector: Any) -> list[dict[str, float]]:
    """Ray's checks of ``placement_group()``'s arguments; the bundles as float dicts."""
    specs = check_bundles(bundles)
    check_strategy(strategy)
    if not isinstance(name, str):
        raise TypeError(f"placement_group: name must be a str, got {type(name).__name__}")
    if lifetime not in (None, "detached"):
        raise ValueError(f"Placement group `lifetime` argument must be either `None` or 'detached'. Got {lifetime!r}.")
    if max_cpu_fraction is not None:
        if not isinstance(max_cpu_fraction, Real) or isinstance(max_cpu_fraction, bool) \
                or not 0 < max_cpu_fraction <= 1:  # type: ignore[operator]  # mypy does not model numbers.Real (python/mypy#3186)
            raise ValueError(f"Invalid argument `_max_cpu_fraction_per_node`: {max_cpu_fraction!r}. "
                             "_max_cpu_fraction_per_node must be a float between 0 and 1.")
        if max_cpu_fraction < 1:
            raise NotImplementedError("_max_cpu_fraction_per_node below 1 is not supported yet")
    if soft_target_node_id is not None:
        if not isinstance(soft_target_node_id, str):
            raise TypeError(f"_soft_target_node_id must be a hex str, got {type(soft_target_node_id).__name__}")
        if strategy != "STRICT_PACK":
            raise ValueError(f"_soft_target_node_id currently only works with STRICT_PACK but got {strategy}")
    if bundle_label_selector is not None:
        if not isinstance(bundle_label_selector, list):
            raise ValueError("Placement group bundle_label_selector must be a list, "
                             f"got {type(bundle_label_selector)}.")
        if len(bundle_label_selector) != len(specs):
            raise ValueError(f"Invalid bundle label selector {bundle_label_selector}. The length of "
                             f"`bundle_label_selector` should equal the length of `bundles`.")
        for i, selector in enumerate(bundle_label_selector):
            if not isinstance(selector, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in selector.items()):
                raise ValueError(f"bundle_label_selector[{i}]: Bundle label selector must be a list of string "
                                 f"dictionary label selectors, got {selector!r}")
            check_label_selector(selector, f"bundle_label_selector[{i}]")
    return specs


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    _max_cpu_fraction_per_node: float | None = None,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: list[dict[str, str]] | None = None,
) -> PlacementGroup:
    """Ask the cluster to reserve ``bundles`` with ``strategy``; returns at once with the
    group's handle (``pg.ready()`` / ``pg.wait()`` tell when it is placed).

    ``name`` makes it findable with ``get_placement_group`` in this job's namespace;
    ``lifetime="detached"`` keeps it after the job ends (until removed).
    """
    specs = _check_options(bundles, strategy, name, lifetime, _max_cpu_fraction_per_node, _soft_target_node_id,
                           bundle_label_selector)
    me = lowlevel.runtime_info()
    pg_id = PlacementGroupID.from_random()
    lowlevel.control_call("create_placement_group", pg_id.hex(), specs, strategy, name, me.namespace,
                          lifetime == "detached", me.job_id, bundle_label_selector or None)
    return PlacementGroup(pg_id, specs)


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's resources; its tasks and actors are killed, and its ``ready()``
    refs that are still waiting raise."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"remove_placement_group expects a PlacementGroup, got {type(placement_group).__name__}")
    lowlevel.control_call("remove_placement_group", placement_group.id.hex())


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live group named ``placement_group_name`` in this job's namespace (ValueError if none)."""
    if not isinstance(placement_group_name, str) or not placement_group_name:
        raise ValueError("Please supply a non-empty value to get_placement_group")
    rows = [r for r in _info(None, placement_group_name, lowlevel.runtime_info().namespace)
            if r["state"] != "REMOVED"]
    if not rows:
        raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")
    row = rows[0]
    return PlacementGroup(PlacementGroupID.from_hex(row["placement_group_id"]), [dict(b) for b in row["bundles"]])


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A control store row in Ray's shape: bundles and their nodes keyed by bundle index
    (a bundle not placed yet has node id "")."""
    nodes = row.get("bundles_to_node_id") or [""] * len(row["bundles"])
    return {
        "placement_group_id": row["placement_group_id"],
        "name": row["name"],
        "bundles": {i: dict(b) for i, b in enumerate(row["bundles"])},
        "bundles_to_node_id": dict(enumerate(nodes)),
        "strategy": row["strategy"],
        "state": row["state"],
    }


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """Every group's row, keyed by id hex; or the row of ``placement_group`` ({} if unknown)."""
    if placement_group is None:
        return {row["placement_group_id"]: _table_row(row) for row in _info(None, None, None)}
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"placement_group_table expects a PlacementGroup or None, got {type(placement_group).__name__}")
    rows = _info(placement_group.id.hex(), None, None)
    return _table_row(rows[0]) if rows else {}


def get_current_placement_group() -> PlacementGroup | None:
    """The group the current task or actor runs in (whether or not it captures its child
    tasks, as in Ray); None outside any group, and in a driver."""
    pg_id = lowlevel.current_placement_group_id()
    return PlacementGroup(PlacementGroupID.from_hex(pg_id)) if pg_id else None
