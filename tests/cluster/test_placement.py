"""Placement of groups' bundles, checked against the strategies' definitions by brute force."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.cluster._placement import (
    BUNDLE_MARKER_UNITS,
    STRATEGIES,
    bundle_resources,
    check_bundles,
    feasible_ever,
    pg_shape,
    place,
)
from tray.cluster._resources import UNIT, Ledger, from_units

NAMES = ("CPU", "GPU", "X")

Units = dict[str, int]


@st.composite
def clusters(draw: st.DrawFn) -> tuple[dict[str, Units], dict[str, Units]]:
    """``(free, total)`` of 1-4 nodes with small amounts of a few resources (free <= total)."""
    ids = draw(st.lists(st.sampled_from([f"n{i}" for i in range(6)]), min_size=1, max_size=4, unique=True))
    total, free = {}, {}
    for node in ids:
        total[node] = {r: draw(st.integers(0, 6)) for r in draw(st.sets(st.sampled_from(NAMES)))}
        free[node] = {r: draw(st.integers(0, amount)) for r, amount in total[node].items()}
    return free, total


bundle_lists = st.lists(
    st.dictionaries(st.sampled_from(NAMES), st.integers(0, 4), min_size=1).filter(lambda b: any(b.values())),
    min_size=1, max_size=4,
)


def _fits(need: Units, have: Units) -> bool:
    return all(have.get(k, 0) >= v for k, v in need.items())


def _valid(bundles: list[Units], strategy: str, free: dict[str, Units], nodes: tuple[str, ...]) -> bool:
    """Whether assigning bundle i to ``nodes[i]`` obeys ``strategy`` and fits ``free``."""
    if strategy == "STRICT_PACK" and len(set(nodes)) != 1:
        return False
    if strategy == "STRICT_SPREAD" and len(set(nodes)) != len(nodes):
        return False
    for node in set(nodes):
        used: Units = {}
        for shape, where in zip(bundles, nodes, strict=True):
            if where == node:
                for k, v in shape.items():
                    used[k] = used.get(k, 0) + v
        if not _fits(used, free[node]):
            return False
    return True


def _brute(bundles: list[Units], strategy: str, free: dict[str, Units]) -> list[tuple[str, ...]]:
    return [a for a in itertools.product(sorted(free), repeat=len(bundles)) if _valid(bundles, strategy, free, a)]


@settings(max_examples=200, deadline=None)
@given(clusters(), bundle_lists, st.sampled_from(STRATEGIES))
def test_place_is_valid_and_finds_an_assignment_whenever_one_exists(cluster, bundles, strategy) -> None:
    free, total = cluster
    got = place(bundles, strategy, free, total)
    valid = _brute(bundles, strategy, free)
    if got is None:
        assert not valid, f"{strategy} found nothing, but {valid[0]} is valid"
        return
    assert len(got) == len(bundles) and set(got) <= set(free)
    assert _valid(bundles, strategy, free, tuple(got)), f"{got} breaks {strategy} or over-commits a node"


@settings(max_examples=120, deadline=None)
@given(clusters(), bundle_lists)
def test_pack_uses_one_node_when_one_node_holds_everything(cluster, bundles) -> None:
    free, total = cluster
    got = place(bundles, "PACK", free, total)
    if _brute(bundles, "STRICT_PACK", free):
        assert got is not None and len(set(got)) == 1


@settings(max_examples=120, deadline=None)
@given(clusters(), bundle_lists)
def test_spread_uses_distinct_nodes_when_it_can(cluster, bundles) -> None:
    free, total = cluster
    got = place(bundles, "SPREAD", free, total)
    if _brute(bundles, "STRICT_SPREAD", free):
        assert got is not None and len(set(got)) == len(bundles)


@settings(max_examples=120, deadline=None)
@given(clusters(), bundle_lists, st.sampled_from(STRATEGIES), st.randoms(use_true_random=False))
def test_place_is_deterministic_whatever_the_order_of_the_nodes(cluster, bundles, strategy, rnd) -> None:
    free, total = cluster
    ids = list(free)
    rnd.shuffle(ids)
    shuffled = {n: dict(reversed(list(free[n].items()))) for n in ids}
    assert place(bundles, strategy, shuffled, total) == place(bundles, strategy, free, total)


@settings(max_examples=200, deadline=None)
@given(clusters(), bundle_lists, st.sampled_from(STRATEGIES))
def test_feasible_ever_iff_an_assignment_exists_on_an_empty_cluster(cluster, bundles, strategy) -> None:
    _free, total = cluster
    why = feasible_ever(bundles, strategy, total)
    possible = bool(_brute(bundles, strategy, total))
    assert (why is None) == possible, why
    if why is not None:
        assert isinstance(why, str) and why
    # the same group on an empty cluster: place agrees
    assert (place(bundles, strategy, total, total) is not None) == possible


@pytest.mark.parametrize(("bundles", "strategy", "total", "words"), [
    ([{"CPU": 8}], "PACK", {"a": {"CPU": 4}, "b": {"CPU": 4}}, ["bundle 0", "8 CPU", "largest node has 4"]),
    ([{"CPU": 1}] * 3, "STRICT_SPREAD", {"a": {"CPU": 4}, "b": {"CPU": 4}}, ["STRICT_SPREAD", "3 distinct", "has 2"]),
    ([{"CPU": 3}] * 2, "STRICT_PACK", {"a": {"CPU": 4}, "b": {"CPU": 4}},
     ["STRICT_PACK", "6 CPU", "largest node has 4"]),
    ([{"GPU": 1}], "SPREAD", {"a": {"CPU": 4}}, ["no node has GPU"]),
    ([{"CPU": 3}] * 3, "PACK", {"a": {"CPU": 4}, "b": {"CPU": 4}}, ["9 CPU in all", "cluster has 8"]),
    ([{"CPU": 3}] * 2, "PACK", {"a": {"CPU": 4}, "b": {"CPU": 4}, "c": {"CPU": 1}}, None),
    ([{"CPU": 1}], "PACK", {}, ["no nodes"]),
])
def test_feasible_ever_says_what_is_missing(bundles, strategy, total, words) -> None:
    scale = lambda d: {k: v * UNIT for k, v in d.items()}  # noqa: E731
    why = feasible_ever([scale(b) for b in bundles], strategy, {n: scale(t) for n, t in total.items()})
    if words is None:
        assert why is None
    else:
        assert why is not None and all(w in why for w in words), why


def test_strategies_prefer_the_roomiest_node_and_pack_fills_few_nodes() -> None:
    free = {"a": {"CPU": 1 * UNIT}, "b": {"CPU": 4 * UNIT}, "c": {"CPU": 3 * UNIT}}
    total = {n: {"CPU": 4 * UNIT} for n in free}
    assert place([{"CPU": UNIT}], "STRICT_PACK", free, total) == ["b"]
    assert place([{"CPU": 2 * UNIT}] * 3, "PACK", free, total) == ["b", "b", "c"]
    assert place([{"CPU": UNIT}] * 3, "SPREAD", free, total) == ["b", "c", "a"]
    assert place([{"CPU": UNIT}] * 4, "SPREAD", free, total) == ["b", "c", "a", "b"]
    assert place([{"CPU": 2 * UNIT}] * 3, "STRICT_SPREAD", free, total) is None


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="STRICT_PACK"):
        place([{"CPU": 1}], "TIGHT", {"a": {"CPU": 1}}, {"a": {"CPU": 1}})
    with pytest.raises(ValueError, match="Invalid placement group strategy"):
        feasible_ever([{"CPU": 1}], "pack", {"a": {"CPU": 1}})


def test_large_groups_place_quickly() -> None:
    """A hundred nodes and hundreds of bundles stay well under a second, whatever the strategy,
    including groups too big for the exhaustive search (greedy pass only)."""
    rnd = random.Random(7)
    total = {f"node{i:03}": {"CPU": rnd.choice([4, 8, 16]) * UNIT, "GPU": rnd.choice([0, 1, 2]) * UNIT}
             for i in range(100)}  # 960 CPUs; 98 GPUs on 68 nodes
    for strategy, bundles, fits in [
        ("PACK", [{"CPU": 2 * UNIT}] * 480, True),
        ("PACK", [{"CPU": 2 * UNIT}] * 481, False),
        ("SPREAD", [{"CPU": UNIT, "GPU": UNIT}] * 98, True),
        ("STRICT_SPREAD", [{"CPU": 4 * UNIT}] * 100, True),
        ("STRICT_SPREAD", [{"GPU": UNIT}] * 68, True),
        ("STRICT_SPREAD", [{"GPU": UNIT}] * 69, False),
        ("STRICT_PACK", [{"CPU": UNIT}] * 16, True),
    ]:
        start = time.perf_counter()
        got = place(bundles, strategy, total, total)
        assert time.perf_counter() - start < 1.0, strategy
        assert (got is not None) == fits, (strategy, len(bundles))
        if got is not None:
            assert _valid(bundles, strategy, total, tuple(got))


def test_a_hard_packing_is_found_by_backtracking() -> None:
    """First fit (largest first) fails here; the search finds 3+2 | 3+2 on two nodes of 5."""
    free = {"a": {"CPU": 5}, "b": {"CPU": 5}}
    bundles = [{"CPU": 3}, {"CPU": 3}, {"CPU": 2}, {"CPU": 2}]
    assert place(bundles, "PACK", free, free) is not None
    bundles = [{"CPU": 3, "X": 1}, {"CPU": 2, "X": 1}, {"CPU": 2}, {"CPU": 3}]
    free = {"a": {"CPU": 5, "X": 1}, "b": {"CPU": 5, "X": 1}}
    got = place(bundles, "PACK", free, free)
    assert got is not None and _valid(bundles, "PACK", free, tuple(got))


# ------------------------------------------------------------- bundle resources


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(NAMES), st.integers(1, 5 * UNIT), min_size=1), min_size=1, max_size=3),
       st.data())
def test_a_task_in_a_bundle_fits_in_exactly_that_bundle(shapes, data) -> None:
    pg, other = "aa11", "bb22"
    node = Ledger({})
    for i, shape in enumerate(shapes):
        for k, v in bundle_resources(pg, i, shape).items():
            node.total[k] = node.free[k] = node.total.get(k, 0) + v
    i = data.draw(st.integers(0, len(shapes) - 1))
    shape = shapes[i]
    assert node.fits(pg_shape(shape, pg, i))
    assert node.fits(pg_shape({}, pg, i))  # a zero-resource task still fits (the marker)
    assert not node.fits(pg_shape(shape, other, i)) and not node.fits(pg_shape({}, other, -1))
    name = data.draw(st.sampled_from(sorted(shape)))
    assert not node.fits(pg_shape({**shape, name: shape[name] + 1}, pg, i))
    # every bundle's own task at once: each takes exactly its bundle
    assert all(node.acquire(pg_shape(s, pg, j)) for j, s in enumerate(shapes))
    for j, s in enumerate(shapes):
        for k in s:
            assert node.free[f"{k}_group_{j}_{pg}"] == 0
    # any-bundle tasks draw on the group's total on the node
    whole: dict[str, int] = {}
    for s in shapes:
        for k, v in s.items():
            whole[k] = whole.get(k, 0) + v
    fresh = Ledger({})
    for j, s in enumerate(shapes):
        for k, v in bundle_resources(pg, j, s).items():
            fresh.total[k] = fresh.free[k] = fresh.total.get(k, 0) + v
    assert fresh.fits(pg_shape(whole, pg, -1))
    assert not fresh.fits(pg_shape({**whole, name: whole[name] + 1}, pg, -1))


def test_bundle_resources_use_rays_names() -> None:
    got = bundle_resources("abc", 2, {"CPU": UNIT, "GPU": 0})
    assert got == {"CPU_group_2_abc": UNIT, "CPU_group_abc": UNIT,
                   "bundle_group_2_abc": BUNDLE_MARKER_UNITS, "bundle_group_abc": BUNDLE_MARKER_UNITS}
    assert from_units({"b": BUNDLE_MARKER_UNITS}) == {"b": 1000.0}
    assert pg_shape({"CPU": UNIT}, "abc", -1) == {"CPU_group_abc": UNIT, "bundle_group_abc": 1}
    assert pg_shape({"CPU": UNIT}, "abc", 0) == {"CPU_group_0_abc": UNIT, "bundle_group_0_abc": 1}
    with pytest.raises(ValueError, match="-1"):
        pg_shape({}, "abc", -2)


# ------------------------------------------------------------------- validation


def test_check_bundles_returns_floats() -> None:
    assert check_bundles([{"CPU": 1}, {"GPU": 0.5, "CPU": 0}]) == [{"CPU": 1.0}, {"GPU": 0.5, "CPU": 0.0}]


@pytest.mark.parametrize(("bundles", "match"), [
    ([], "non-empty list"),
    ({"CPU": 1}, "must be a list"),
    ([{"CPU": 1}, {}], "Bundle 1 is an empty dict"),
    ([{"CPU": 0, "GPU": 0}], "only 0 values"),
    ([{"CPU": -1}], "Bundle 0 .* >= 0"),
    ([{"CPU": float("nan")}], "finite"),
    ([{"CPU": float("inf")}], "finite"),
    ([{"CPU": "1"}], "must be numbers"),
    ([{"CPU": True}], "must be numbers"),
    ([{1: 1}], "names must be"),
    ([["CPU", 1]], "Bundle 0 must be a dict"),
    ([{"CPU": 1e-6}], "smallest amount"),
])
def test_check_bundles_names_the_bad_bundle(bundles, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_bundles(bundles)
