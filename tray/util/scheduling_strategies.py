"""Ray's scheduling strategies (``ray.util.scheduling_strategies``), for ``.options(scheduling_strategy=...)``.

Besides the strings ``"DEFAULT"`` and ``"SPREAD"``, a task or actor can be scheduled into a
placement group, onto a given node, or onto nodes with given labels. The classes keep
Ray's constructor signatures and attribute names; they are plain picklable values, since
they travel to the node scheduler in lease requests. Arguments are checked here, so a
mistake fails at the call site: wrong types raise TypeError, and where Ray itself checks
a value (bundle indexes, node affinity flags, label expressions) its ValueError is kept.
"""

from __future__ import annotations

from typing import Any

from .placement_group import PlacementGroup

__all__ = [
    "DoesNotExist",
    "Exists",
    "In",
    "NodeAffinitySchedulingStrategy",
    "NodeLabelSchedulingStrategy",
    "NotIn",
    "PlacementGroupSchedulingStrategy",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PlacementGroupSchedulingStrategy:
    """Run in ``placement_group``: in bundle ``placement_group_bundle_index`` (-1: any
    bundle); ``placement_group_capture_child_tasks`` puts the tasks and actors it starts in
    the group too (None: inherit the caller's setting).

    ``placement_group=None`` schedules outside any group (how a task in a capturing group
    starts a child outside it).
    """

    def __init__(self, placement_group: PlacementGroup | None, placement_group_bundle_index: int = -1,
                 placement_group_capture_child_tasks: bool | None = None) -> None:
        if placement_group is not None and not isinstance(placement_group, PlacementGroup):
            raise TypeError("PlacementGroupSchedulingStrategy: placement_group must be a PlacementGroup"
                            f" (from tray.util.placement_group()) or None, got {type(placement_group).__name__}")
        if not _is_int(placement_group_bundle_index):
            raise TypeError("PlacementGroupSchedulingStrategy: placement_group_bundle_index must be an int,"
                            f" got {type(placement_group_bundle_index).__name__}")
        if placement_group_capture_child_tasks is not None and not isinstance(placement_group_capture_child_tasks,
                                                                              bool):
            raise TypeError("PlacementGroupSchedulingStrategy: placement_group_capture_child_tasks must be a bool"
                            f" or None, got {type(placement_group_capture_child_tasks).__name__}")
        _check_bundle_index(placement_group, placement_group_bundle_index)
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks

    def __repr__(self) -> str:
        return (f"PlacementGroupSchedulingStrategy({self.placement_group!r}, "
                f"placement_group_bundle_index={self.placement_group_bundle_index}, "
                f"placement_group_capture_child_tasks={self.placement_group_capture_child_tasks})")


def _check_bundle_index(pg: PlacementGroup | None, index: int) -> None:
    """Ray's rule: -1 or a bundle of the group (checked when the group's bundles are known
    here, which they are for a group made or looked up in this process)."""
    if pg is None or pg.is_empty:
        if index != -1:
            raise ValueError("If placement group is not set, the value of bundle index must be -1.")
        return
    count = len(pg.bundle_cache) if pg.bundle_cache else None
    if index < -1 or (count is not None and index >= count):
        valid = f"0-{count - 1}" if count is not None else ">= 0"
        raise ValueError(f"placement group bundle index {index} is invalid. Valid placement group indexes: -1 (any),"
                         f" {valid}")


class NodeAffinitySchedulingStrategy:
    """Run on node ``node_id`` (a hex id, as ``tray.get_runtime_context().get_node_id()``
    gives). ``soft=True``: elsewhere if that node is dead or infeasible (and, with
    ``_spill_on_unavailable``, if it is busy); ``soft=False``: fail instead (at once if
    it is busy, with ``_fail_on_unavailable``)."""

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False) -> None:
        if not isinstance(node_id, str) and callable(getattr(node_id, "hex", None)):
            node_id = node_id.hex()  # a NodeID object, as Ray accepts
        if not isinstance(node_id, str) or not node_id:
            raise TypeError(f"NodeAffinitySchedulingStrategy: node_id must be a non-empty hex str, got {node_id!r}")
        for name, value in (("soft", soft), ("_spill_on_unavailable", _spill_on_unavailable),
                            ("_fail_on_unavailable", _fail_on_unavailable)):
            if not isinstance(value, bool):
                raise TypeError(f"NodeAffinitySchedulingStrategy: {name} must be a bool, got {type(value).__name__}")
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable
        invalid = [name for name, bad in (("_spill_on_unavailable", _spill_on_unavailable and not soft),
                                          ("_fail_on_unavailable", _fail_on_unavailable and soft)) if bad]
        if invalid:
            raise ValueError(f"{invalid} should only be set when soft is {not soft}.")

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


# ----------------------------------------------------------------------- labels


def _check_values(values: tuple[Any, ...], operator: str) -> list[str]:
    if not values:
        raise ValueError(f"The variadic parameter of the {operator} operator must be a non-empty tuple:"
                         f' e.g. {operator}("value1", "value2").')
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"Type of value in position {i} for the {operator} operator must be str"
                             f' (e.g. {operator}("value1", "value2")) but got {value!r} of type'
                             f" {type(value).__name__}.")
    return list(values)


class _Operator:
    values: list[str]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.values == self.values

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.values)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.values))})"


class In(_Operator):
    """The label's value is one of ``values``."""

    def __init__(self, *values: str) -> None:
        self.values = _check_values(values, "In")


class NotIn(_Operator):
    """The label is absent or its value is none of ``values``."""

    def __init__(self, *values: str) -> None:
        self.values = _check_values(values, "NotIn")


class Exists(_Operator):
    """The node has the label, whatever its value."""

    def __init__(self) -> None:
        self.values = []


class DoesNotExist(_Operator):
    """The node lacks the label."""

    def __init__(self) -> None:
        self.values = []


LabelExpressions = dict[str, In | NotIn | Exists | DoesNotExist]


def _check_expressions(expressions: Any, param: str) -> LabelExpressions:
    if expressions is None:
        return {}
    if not isinstance(expressions, dict):
        raise ValueError(f'The {param} parameter must be a map (e.g. {{"key1": In("value1")}})'
                         f" but got type {type(expressions).__name__}.")
    for key, value in expressions.items():
        if not isinstance(key, str):
            raise ValueError(f'The key of the {param} parameter must be of type str (e.g. {{"key1": In("value1")}})'
                             f" but got {key!r} of type {type(key).__name__}.")
        if not isinstance(value, _Operator):
            raise ValueError(f"The value of the key {key!r} in the {param} parameter must be an operator"
                             f' (e.g. {{"key1": In("value1")}}) but got {value!r} of type {type(value).__name__}.')
    return dict(expressions)


class NodeLabelSchedulingStrategy:
    """Run on a node whose labels match every ``hard`` expression, preferring nodes that
    also match the ``soft`` ones, e.g. ``NodeLabelSchedulingStrategy({"zone": In("us-1")})``."""

    def __init__(self, hard: LabelExpressions, *, soft: LabelExpressions | None = None) -> None:
        self.hard = _check_expressions(hard, "hard")
        self.soft = _check_expressions(soft, "soft")
        if not (self.hard or self.soft):
            raise ValueError("The `hard` and `soft` parameter of NodeLabelSchedulingStrategy cannot both be empty.")

    def __repr__(self) -> str:
        return f"NodeLabelSchedulingStrategy(hard={self.hard!r}, soft={self.soft!r})"
