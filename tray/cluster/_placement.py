"""Placement groups as pure logic: where a group's bundles go, and the resources they become.

The control store calls ``place`` whenever a pending group might fit (a group was
removed, a node joined) and ``feasible_ever`` when a group is created (to tell the user at
once that a group can never be placed). All amounts are integer units (``_resources``).

Choices, where Ray leaves them open:

- Among nodes that are otherwise equal, a node with more of its capacity free is preferred:
  a node's *room* is the sum, over the resources the group asks for, of free / total. Ties
  go to the smaller node id, so equal inputs give equal answers.
- STRICT_PACK and STRICT_SPREAD are exact: ``None`` means no valid assignment exists now
  (STRICT_SPREAD is a bipartite matching of bundles to distinct nodes).
- PACK and SPREAD never return ``None`` when an assignment exists, unless the search for
  one exceeds ``SEARCH_BUDGET`` steps or the group has more than ``MAX_SEARCH_DEPTH``
  bundles (then only a greedy pass is made): multi-resource bin packing is NP-hard, and
  a group that is not placed simply stays pending and is tried again later.
- PACK puts everything on one node when one node can hold it, else packs bundles
  (largest first) onto nodes already used, opening the node that can hold the largest
  share of the group when it must. SPREAD first puts as many bundles as possible on
  distinct nodes (a maximum matching), then the rest wherever they fit, least-loaded
  nodes first.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from numbers import Real
from typing import Any

from ._resources import UNIT, from_units, to_units

__all__ = [
    "BUNDLE_MARKER_UNITS",
    "SEARCH_BUDGET",
    "STRATEGIES",
    "bundle_resources",
    "captures",
    "check_bundles",
    "check_strategy",
    "feasible_ever",
    "group_of",
    "pg_shape",
    "place",
    "with_eligibility",
]

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")

# A reserved bundle gives its node 1000.0 of ``bundle_group_{i}_{pg}`` and
# ``bundle_group_{pg}`` (Ray's amount); a task or actor in the group asks for one unit
# (0.0001) of it, so a zero-CPU task still needs the group to be there, and ten million
# of them fit in one bundle.
BUNDLE_MARKER_UNITS = 1000 * UNIT
TASK_MARKER_UNITS = 1
# A task or actor that captures its child tasks (``placement_group_capture_child_tasks``)
# asks for two units instead: the flag reaches its worker with its lease's shape.
CAPTURE_MARKER_UNITS = 2

SEARCH_BUDGET = 2_000  # backtracking steps before a PACK/SPREAD group is left pending (~0.1 s at 100 nodes)
MAX_SEARCH_DEPTH = 400  # groups with more bundles get the greedy pass only (no recursion)

Units = Mapping[str, int]


# ------------------------------------------------------------------ validation


def check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy!r}. "
                         f"Supported strategies are: {list(STRATEGIES)}.")
    return strategy


def check_bundles(bundles: Any) -> list[dict[str, float]]:
    """The bundles as float dicts, or ValueError naming the bad bundle and why (Ray's rules)."""
    example = 'For example: `[{"CPU": 1.0}, {"GPU": 1.0}]`.'
    if not isinstance(bundles, (list, tuple)):
        raise ValueError(f"Placement group bundles must be a list, got {type(bundles).__name__}. {example}")
    if not bundles:
        raise ValueError(f"Bundles must be a non-empty list of resource dictionaries. {example} Got an empty list.")
    out = []
    for i, bundle in enumerate(bundles):
        if not isinstance(bundle, Mapping):
            raise ValueError(f"Bundle {i} must be a dict of resource names to amounts, got {bundle!r}. {example}")
        if not bundle:
            raise ValueError(f"Bundle {i} is an empty dict; bundles cannot be empty. Bundles: {bundles}")
        for name, amount in bundle.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Bundle {i} has resource name {name!r}: names must be non-empty strings.")
            if not isinstance(amount, Real) or isinstance(amount, bool):
                raise ValueError(f"Bundle {i} asks for {amount!r} of {name!r}: amounts must be numbers.")
            if not (math.isfinite(amount) and amount >= 0):  # type: ignore[operator]  # mypy does not model numbers.Real (python/mypy#3186)
                raise ValueError(f"Bundle {i} asks for {amount!r} of {name!r}: amounts must be finite and >= 0.")
            if amount and not round(amount * UNIT):  # type: ignore[call-overload]  # a Real: see above
                raise ValueError(f"Bundle {i} asks for {amount!r} of {name!r}: the smallest amount is {1 / UNIT}.")
        if not to_units(bundle):
            raise ValueError(f"Bundle {i} {dict(bundle)} has only 0 values; bundles cannot be empty. "
                             f"Bundles: {bundles}")
        out.append({name: float(amount) for name, amount in bundle.items()})
    return out


# ------------------------------------------------------------- bundle resources


def bundle_resources(pg_id: str, index: int, shape: Units) -> dict[str, int]:
    """What a node gains when bundle ``index`` of group ``pg_id`` is reserved on it (its
    base resources lose ``shape``): each resource under its indexed and wildcard group
    names, plus the bundle markers (Ray's naming)."""
    out = {}
    for name, amount in shape.items():
        if amount:
            out[f"{name}_group_{index}_{pg_id}"] = amount
            out[f"{name}_group_{pg_id}"] = amount
    out[f"bundle_group_{index}_{pg_id}"] = BUNDLE_MARKER_UNITS
    out[f"bundle_group_{pg_id}"] = BUNDLE_MARKER_UNITS
    return out


def pg_shape(shape: Units, pg_id: str, index: int, capture: bool = False) -> dict[str, int]:
    """What a task or actor scheduled into the group asks for instead of ``shape``: bundle
    ``index``'s resources, or (index -1) the group's resources on any one node; ``capture``:
    the tasks and actors it starts go into the group too (``captures``)."""
    if index < -1:
        raise ValueError(f"placement group bundle index must be >= -1, got {index}")
    suffix = pg_id if index == -1 else f"{index}_{pg_id}"
    out = {f"{name}_group_{suffix}": amount for name, amount in shape.items() if amount}
    out[f"bundle_group_{suffix}"] = CAPTURE_MARKER_UNITS if capture else TASK_MARKER_UNITS
    return out


def captures(shape: Units | None) -> bool:
    """Whether the task or actor leased with ``shape`` puts its children in its group."""
    return any(k.startswith("bundle_group_") and v == CAPTURE_MARKER_UNITS for k, v in (shape or {}).items())


def group_of(shape: Units) -> tuple[str, int] | None:
    """The placement group and bundle index (-1: any) a ``pg_shape`` asks for; None for a
    shape outside any group."""
    for name in shape:
        if name.startswith("bundle_group_"):
            rest = name[len("bundle_group_"):]
            index, sep, pg_id = rest.partition("_")
            if sep and index.isdigit():
                return pg_id, int(index)
            return rest, -1
    return None


# -------------------------------------------------------------------- placement


class _OutOfBudget(Exception):
    pass


def _fits(need: Units, avail: Units) -> bool:
    return all(avail.get(k, 0) >= v for k, v in need.items())


def _sum(shapes: Sequence[Units]) -> dict[str, int]:
    out: dict[str, int] = {}
    for shape in shapes:
        for k, v in shape.items():
            out[k] = out.get(k, 0) + v
    return out


def _room(free: Units, total: Units, names: Sequence[str]) -> float:
    """How much of the node's capacity, in the resources that matter, is free."""
    return sum(free.get(r, 0) / total[r] for r in names if total.get(r, 0) > 0)


class _Problem:
    """One ``place`` call: the bundles, the nodes in preference order, and their free resources."""

    def __init__(self, bundles: Sequence[Units], free: Mapping[str, Units], total: Mapping[str, Units]) -> None:
        self.bundles = [dict(b) for b in bundles]
        self.names = sorted({r for b in self.bundles for r, v in b.items() if v})
        ids = sorted(free)
        room = {n: _room(free[n], total.get(n, free[n]), self.names) for n in ids}
        self.nodes = sorted(ids, key=lambda n: (-room[n], n))  # roomiest first
        self.free = {n: [free[n].get(r, 0) for r in self.names] for n in ids}
        most = {r: max([total.get(n, free[n]).get(r, 0) for n in ids] + [1]) for r in self.names}
        size = [sum(b.get(r, 0) / most[r] for r in self.names) for b in self.bundles]
        self.order = sorted(range(len(self.bundles)), key=lambda i: (-size[i], i))  # largest first
        self.need = [[b.get(r, 0) for r in self.names] for b in self.bundles]

    def fits(self, i: int, avail: list[int]) -> bool:
        return all(a >= n for a, n in zip(avail, self.need[i], strict=True))

    def strict_pack(self) -> list[str] | None:
        total = [sum(col) for col in zip(*self.need, strict=True)] if self.need else []
        for n in self.nodes:
            if all(a >= t for a, t in zip(self.free[n], total, strict=True)):
                return [n] * len(self.bundles)
        return None

    def matching(self, items: Sequence[int]) -> dict[int, str]:
        """A maximum matching of bundles ``items`` to distinct nodes they fit on: augmenting
        paths found breadth first (no recursion), bundles largest first, nodes roomiest first."""
        owner: dict[str, int] = {}  # node -> bundle
        where: dict[int, str] = {}  # bundle -> node
        for start in items:
            reached_from: dict[str, int] = {}
            queue, end = deque([start]), None
            while queue and end is None:
                i = queue.popleft()
                for n in self.nodes:
                    if n in reached_from or not self.fits(i, self.free[n]):
                        continue
                    reached_from[n] = i
                    if n not in owner:
                        end = n
                        break
                    queue.append(owner[n])
            while end is not None:  # flip the path: each bundle on it moves to the next node
                i = reached_from[end]
                previous = where.get(i)
                owner[end], where[i] = i, end
                end = None if i == start else previous
        return where

    def search(self, items: Sequence[int], free: dict[str, list[int]], prefer: Callable[[str, dict[str, int]], Any],
               budget: list[int]) -> dict[int, str] | None:
        """Any assignment of bundles ``items`` to nodes within ``free`` (depth first, each
        bundle trying nodes in ``prefer`` order); None if there is none."""
        quick = self.greedy(items, free, prefer)
        if quick is not None or not items:
            return quick
        if len(items) > MAX_SEARCH_DEPTH:
            raise _OutOfBudget
        free = {n: list(v) for n, v in free.items()}
        load: dict[str, int] = {}
        chosen: dict[int, str] = {}
        failed: set[tuple] = set()

        def go(k: int) -> bool:
            if k == len(items):
                return True
            state = (k, tuple(sorted(tuple(v) for v in free.values())))
            if state in failed:
                return False
            i = items[k]
            tried = set()
            for n in sorted(self.nodes, key=lambda n: prefer(n, load)):
                avail = free[n]
                if tuple(avail) in tried or not self.fits(i, avail):
                    continue  # a node with the same free resources as one tried fails alike
                tried.add(tuple(avail))
                budget[0] -= 1
                if budget[0] < 0:
                    raise _OutOfBudget
                for j, x in enumerate(self.need[i]):
                    avail[j] -= x
                load[n] = load.get(n, 0) + 1
                chosen[i] = n
                if go(k + 1):
                    return True
                for j, x in enumerate(self.need[i]):
                    avail[j] += x
                load[n] -= 1
            failed.add(state)
            return False

        return chosen if go(0) else None

    def greedy(self, items: Sequence[int], free: dict[str, list[int]],
               prefer: Callable[[str, dict[str, int]], Any]) -> dict[int, str] | None:
        """The search's first dive, without backtracking: each bundle on its first choice."""
        free = {n: list(v) for n, v in free.items()}
        load: dict[str, int] = {}
        chosen: dict[int, str] = {}
        for i in items:
            n = next((n for n in sorted(self.nodes, key=lambda n: prefer(n, load)) if self.fits(i, free[n])), None)
            if n is None:
                return None
            free[n] = [a - x for a, x in zip(free[n], self.need[i], strict=True)]
            load[n] = load.get(n, 0) + 1
            chosen[i] = n
        return chosen

    def pack(self, budget: list[int]) -> dict[int, str] | None:
        """Nodes already used first; then the node that holds the largest share of the group
        (not the least loaded one): fewer, fuller nodes."""
        whole = [sum(col) for col in zip(*self.need, strict=True)]
        share = {n: sum(a / w for a, w in zip(self.free[n], whole, strict=True) if w) for n in self.nodes}
        return self.search(self.order, self.free, lambda n, load: (not load.get(n), -share[n], n), budget)

    def spread(self, budget: list[int]) -> dict[int, str] | None:
        rank = {n: r for r, n in enumerate(self.nodes)}
        least_loaded = lambda n, load: (load.get(n, 0), rank[n])  # noqa: E731
        matched = self.matching(self.order)
        rest = [i for i in self.order if i not in matched]
        free = {n: list(v) for n, v in self.free.items()}
        for i, n in matched.items():
            free[n] = [a - x for a, x in zip(free[n], self.need[i], strict=True)]
        placed = self.search(rest, free, least_loaded, budget)
        if placed is not None:
            return {**matched, **placed}
        return self.search(self.order, self.free, least_loaded, budget)


def with_eligibility(bundles: Sequence[Units], free: Mapping[str, Units], total: Mapping[str, Units],
                     eligible: Sequence[Collection[str] | None] | None) -> tuple[list[Units], dict, dict]:
    """The problem with bundle ``i`` allowed only on the nodes ``eligible[i]`` (None: any;
    Ray's ``bundle_label_selector``), as resources: bundle ``i`` asks for one unit of
    "node labels of bundle i", which only its eligible nodes have (enough for every
    bundle), so every strategy's search honours it unchanged."""
    if not eligible or all(e is None for e in eligible):
        return list(bundles), dict(free), dict(total)
    wanted: list[dict[str, int]] = [dict(b) for b in bundles]
    has: dict[str, dict[str, int]] = {n: dict(v) for n, v in free.items()}
    holds: dict[str, dict[str, int]] = {n: dict(v) for n, v in total.items()}
    for i, nodes in enumerate(eligible):
        if nodes is None:
            continue
        name = f"node labels of bundle {i}"
        wanted[i][name] = 1
        for node in nodes:
            if node in has:
                has[node][name] = holds[node][name] = len(wanted)
    return list(wanted), has, holds


def place(bundles: Sequence[Units], strategy: str, free: Mapping[str, Units],
          total: Mapping[str, Units], eligible: Sequence[Collection[str] | None] | None = None) -> list[str] | None:
    """A node id for each bundle (in order), given each alive node's free resources and
    totals (and, per bundle, the nodes its label selector allows: ``with_eligibility``);
    None if the group cannot be placed now. Never over-commits a node."""
    check_strategy(strategy)
    bundles, free, total = with_eligibility(bundles, free, total, eligible)
    if not bundles:
        return []
    problem = _Problem(bundles, free, total)
    n = len(problem.bundles)
    budget = [SEARCH_BUDGET]
    result: list[str] | None
    try:
        if strategy == "STRICT_PACK":
            result = problem.strict_pack()
        elif strategy == "STRICT_SPREAD":
            matched = problem.matching(problem.order) if n <= len(problem.nodes) else {}
            result = [matched[i] for i in range(n)] if len(matched) == n else None
        elif strategy == "PACK":
            result = problem.strict_pack()
            if result is None:
                chosen = problem.pack(budget)
                result = None if chosen is None else [chosen[i] for i in range(n)]
        else:
            chosen = problem.spread(budget)
            result = None if chosen is None else [chosen[i] for i in range(n)]
    except _OutOfBudget:
        return None
    if result is not None:
        used: dict[str, list[Units]] = {}
        for shape, node in zip(bundles, result, strict=True):
            used.setdefault(node, []).append(shape)
        for node, shapes in used.items():
            assert _fits(_sum(shapes), free[node]), f"placement over-commits node {node}"
    return result


# ---------------------------------------------------------------- feasibility


def _amount(units: int) -> str:
    return f"{units / UNIT:g}"


def _missing(need: Units, have: Units, what: str) -> str | None:
    """``what`` asks for more of some resource than ``have`` holds: say which, or None."""
    for name in sorted(need):
        if need[name] > have.get(name, 0):
            held = have.get(name, 0)
            where = f"the largest node has {_amount(held)}" if held else f"no node has {name}"
            return f"{what} asks for {_amount(need[name])} {name}, but {where}"
    return None


def feasible_ever(bundles: Sequence[Units], strategy: str, total: Mapping[str, Units],
                  eligible: Sequence[Collection[str] | None] | None = None) -> str | None:
    """None if the group could be placed on an empty cluster with these node totals (and
    bundle label selectors, as ``place``), else why not. Errs on the side of None when the
    search for an assignment runs too long."""
    check_strategy(strategy)
    for i, nodes in enumerate(eligible or ()):
        if nodes is not None and not set(nodes) & set(total):
            return f"bundle {i}'s label selector matches no node"
    bundles, total, _ = with_eligibility(bundles, total, total, eligible)
    if not total:
        return "the cluster has no nodes"
    largest: dict[str, int] = {}
    for node in total.values():
        for name, amount in node.items():
            largest[name] = max(largest.get(name, 0), amount)
    for i, shape in enumerate(bundles):
        why = _missing(shape, largest, f"bundle {i} {from_units(shape)}")
        if why:
            return why
        if not any(_fits(shape, node) for node in total.values()):
            return f"bundle {i} {from_units(shape)} fits on no node: no node has all of it at once"
    n, k = len(bundles), len(total)
    if strategy == "STRICT_SPREAD" and n > k:
        return f"STRICT_SPREAD needs {n} distinct nodes for its {n} bundles, but the cluster has {k}"
    whole = _sum(bundles)
    if strategy == "STRICT_PACK":
        why = _missing(whole, largest, "STRICT_PACK: the group as a whole")
        return why or (None if place(bundles, strategy, total, total) is not None else
                       f"STRICT_PACK needs {from_units(whole)} on one node, and no node has all of it at once")
    if strategy == "STRICT_SPREAD":
        if place(bundles, strategy, total, total) is not None:
            return None
        most = len(_Problem(bundles, total, total).matching(range(n)))
        return f"STRICT_SPREAD: at most {most} of the {n} bundles fit on distinct nodes"
    cluster = _sum(list(total.values()))
    for name in sorted(whole):
        if whole[name] > cluster.get(name, 0):
            return (f"the bundles ask for {_amount(whole[name])} {name} in all, "
                    f"but the cluster has {_amount(cluster.get(name, 0))}")
    problem = _Problem(bundles, total, total)
    try:
        found = (problem.pack if strategy == "PACK" else problem.spread)([SEARCH_BUDGET])
    except _OutOfBudget:
        return None
    return None if found is not None else "the bundles do not fit on the cluster's nodes together"
