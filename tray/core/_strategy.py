"""From a task's or actor's options to what its lease request carries: the resource shape
and a *strategy* tuple the node scheduler reads.

Strategies (hashable: they key the owner's lease pools and travel in lease requests):
``None`` (Ray's DEFAULT), ``("spread",)``, ``("node", node_id, soft)`` and
``("labels", selectors, prefer, spread)`` — the selectors tried in order (the
``label_selector``, then each ``fallback_strategy`` entry), a soft selector ``prefer``
(``NodeLabelSchedulingStrategy``'s ``soft``), and whether to spread among the nodes that
match. A placement group is not a strategy but a shape: the group's own bundle resources,
which only its nodes have (Ray's bundle resources). A label selector given with another
strategy narrows it, as in Ray: with a group, the shape is the group's and the strategy
its labels; with node affinity, the node's ``ray.io/node-id`` label joins the selectors
(hard) or becomes the preference (soft).

Checks Ray makes at the call are made here too: a request that fits no bundle of its group
(or names a bundle the group lacks) raises ValueError at once, and so does giving both the
legacy ``placement_group=`` option and a ``scheduling_strategy``.
"""

from __future__ import annotations

from typing import Any

from ..cluster._labels import NODE_ID_LABEL, Selector, parse_selector
from ..cluster._resources import task_shape, to_units

__all__ = ["placement"]

_OPERATORS = {"In": "in", "NotIn": "!in", "Exists": "exists", "DoesNotExist": "!exists"}


def placement(opts: dict[str, Any], default_cpus: float, what: str = "task",
              rt: Any = None) -> tuple[dict[str, int], tuple | None]:
    """The resource shape a task (``default_cpus=1``) or actor (``0``) named ``what`` asks
    for, and how to choose its node (see the module's doc). ``rt``: the caller's runtime;
    a caller that runs in a group capturing its children puts a child without a strategy
    in that group too (Ray's ``placement_group_capture_child_tasks``)."""
    floats = task_shape(opts.get("num_cpus"), opts.get("num_gpus"), opts.get("memory"), opts.get("resources"),
                        default_cpus)
    shape = to_units(floats)
    strategy: Any = opts.get("scheduling_strategy")
    inherited = bool(getattr(rt, "capture_child_tasks", False))
    selectors = _selectors(opts)  # a label selector narrows every strategy's nodes, as in Ray
    in_labels = ("labels", selectors, (), False) if selectors else None
    group, index = _legacy_group(opts, strategy)
    if group is not None:
        capture = opts.get("placement_group_capture_child_tasks")
        capture = inherited if capture is None else capture
        return _in_group(shape, floats, group, index, opts, default_cpus, what, capture), in_labels
    if hasattr(strategy, "placement_group"):
        group = strategy.placement_group
        if group is None or getattr(group, "is_empty", False):  # Ray's PlacementGroup.empty(): no group
            return shape, in_labels
        capture = strategy.placement_group_capture_child_tasks
        capture = inherited if capture is None else capture
        return _in_group(shape, floats, group, strategy.placement_group_bundle_index, opts, default_cpus, what,
                         capture), in_labels
    current = getattr(rt, "current_placement_group_id", None)
    if strategy is None and inherited and current and opts.get("placement_group", "default") == "default":  # captured
        from ..cluster._placement import pg_shape

        return pg_shape(shape, current, -1, capture=True), in_labels
    if hasattr(strategy, "node_id") and hasattr(strategy, "soft"):
        if not selectors:
            return shape, ("node", strategy.node_id, bool(strategy.soft))
        on_node: Selector = ((NODE_ID_LABEL, "in", (strategy.node_id,)),)
        if strategy.soft:  # the node if its labels match, else another node that matches
            return shape, ("labels", selectors, on_node, False)
        return shape, ("labels", tuple(tuple(sorted(sel + on_node)) for sel in selectors), (), False)
    if hasattr(strategy, "hard"):  # NodeLabelSchedulingStrategy (and any label_selector: both must hold)
        hard = _expressions(strategy.hard)
        both = tuple(tuple(sorted(hard + sel)) for sel in selectors) if selectors else (hard,)
        return shape, ("labels", both, _expressions(strategy.soft), False)
    if strategy not in (None, "DEFAULT", "SPREAD"):
        raise ValueError(f"unknown scheduling_strategy {strategy!r}: use None, 'DEFAULT', 'SPREAD' or an object "
                         f"of tray.util.scheduling_strategies")
    if selectors:
        return shape, ("labels", selectors, (), strategy == "SPREAD")
    return shape, (("spread",) if strategy == "SPREAD" else None)


def _legacy_group(opts: dict[str, Any], strategy: Any) -> tuple[Any, int]:
    """Ray's deprecated ``placement_group=`` / ``placement_group_bundle_index=`` options, as
    the group and bundle they name (None: no group by that route)."""
    group = opts.get("placement_group", "default")
    index = opts.get("placement_group_bundle_index", -1)
    if isinstance(group, str) or group is None or getattr(group, "is_empty", False):
        if index != -1 and not hasattr(strategy, "placement_group"):
            raise ValueError("If placement group is not set, the value of bundle index must be -1.")
        return None, -1
    if strategy is not None:
        raise ValueError("Placement groups should be specified via the scheduling_strategy option. "
                         "The placement_group option is deprecated.")
    return group, index


def _in_group(shape: dict[str, int], floats: dict[str, float], group: Any, index: int, opts: dict[str, Any],
              default_cpus: float, what: str, capture: bool) -> dict[str, int]:
    """The group's resources instead of ``shape``, once Ray's checks pass: the bundle index
    is one of the group's, and the request fits that bundle (or, index -1, some bundle)."""
    from ..cluster._placement import pg_shape

    bundles = group.bundle_cache or group.bundle_specs
    if index < -1 or index >= len(bundles):
        raise ValueError(f"placement group bundle index {index} is invalid. Valid placement group indexes: -1 (any), "
                         f"0-{len(bundles) - 1}")
    asked = {k: v for k, v in floats.items() if v}
    candidates = [bundles[index]] if index >= 0 else bundles
    if not any(_fits(b, asked) for b in candidates):
        where = f"bundle {index} {bundles[index]}" if index >= 0 else "any bundles"
        raise ValueError(f"Cannot schedule {what} with the placement group because the resource request {asked} "
                         f"cannot fit into {where} for the placement group, {bundles}.")
    if not default_cpus and opts.get("num_cpus") is None and not any(_fits(b, {"CPU": 1.0}) for b in candidates):
        raise ValueError(f"Cannot schedule {what} with the placement group because the actor requires 1 CPU for "
                         f"creation, but it cannot fit into any bundles for the placement group, {bundles}. "
                         f"Consider creating a placement group with CPU resources.")
    return pg_shape(shape, group.id.hex(), index, capture)


def _fits(bundle: dict[str, float], asked: dict[str, float]) -> bool:
    return all(bundle.get(k, 0) >= v for k, v in asked.items())


def _selectors(opts: dict[str, Any]) -> tuple[Selector, ...]:
    """``label_selector`` then each ``fallback_strategy`` entry's, as selectors (none if
    neither is given)."""
    primary = opts.get("label_selector")
    fallback = opts.get("fallback_strategy") or []
    if not primary and not fallback:
        return ()
    return (parse_selector(primary), *(parse_selector(entry.get("label_selector")) for entry in fallback))


def _expressions(expressions: dict[str, Any]) -> Selector:
    """``NodeLabelSchedulingStrategy`` expressions (``In``, ``NotIn``, ``Exists``,
    ``DoesNotExist``) as a selector."""
    out = []
    for key, operator in (expressions or {}).items():
        op = _OPERATORS.get(type(operator).__name__)
        if op is None:
            raise ValueError(f"label expression {key!r}: {operator!r} is not In, NotIn, Exists or DoesNotExist")
        out.append((key, op, tuple(sorted(set(operator.values)))))
    return tuple(sorted(out))
