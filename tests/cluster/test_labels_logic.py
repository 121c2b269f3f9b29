"""Label selectors and Ray's default actor placement as pure logic (no cluster): Ray's
syntax and errors, the four operators checked against their definitions, and the node
choices (selector order, soft preference, hybrid threshold) against brute-force models."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.cluster._labels import (
    NODE_ID_LABEL,
    check_fallback_strategy,
    check_label_selector,
    check_node_labels,
    describe,
    matches,
    parse_condition,
    parse_labels_arg,
    parse_selector,
)
from tray.cluster._placement import feasible_ever, group_of, pg_shape, place
from tray.cluster._policy import SPREAD_THRESHOLD, choose_labelled, hybrid, utilization

VALUES = ("a", "b", "c")
KEYS = ("zone", "tier")

label_maps = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


# ------------------------------------------------------------------- syntax


@pytest.mark.parametrize(("text", "condition"), [
    ("a", ("k", "in", ("a",))),
    ("!a", ("k", "!in", ("a",))),
    ("in(b,a)", ("k", "in", ("a", "b"))),
    ("!in(a, b)", ("k", "!in", ("a", "b"))),
    ("", ("k", "exists", ())),
])
def test_ray_selector_syntax_parses(text, condition):
    assert parse_condition("k", text) == condition


@pytest.mark.parametrize("text", ["in(a,b", "-a", "!!a", "in()", "a b", "x" * 64])
def test_bad_selector_values_are_value_errors_in_rays_words(text):
    with pytest.raises(ValueError, match="Invalid label selector value"):
        check_label_selector({"k": text})


@pytest.mark.parametrize(("selector", "error", "match"), [
    ("zone=a", TypeError, "must be"),
    ({"zone": 1}, TypeError, "must be a str"),
    ({"zo ne": "a"}, ValueError, "Invalid label key name"),
    ({"bad_/zone": "a"}, ValueError, "Invalid label key prefix"),
])
def test_bad_selectors(selector, error, match):
    with pytest.raises(error, match=match):
        check_label_selector(selector)


def test_prefixed_keys_such_as_rays_defaults_are_valid_selector_keys():
    assert check_label_selector({NODE_ID_LABEL: "abc", "example.com/gpu": "!in(a100,h100)"})


@pytest.mark.parametrize(("fallback", "error", "match"), [
    ({"label_selector": {}}, TypeError, "fallback_strategy"),
    ([1], ValueError, "must be a dictionary"),
    ([{}], ValueError, "Empty dictionary"),
    ([{"num_cpus": 1}], ValueError, "Unsupported option found: 'num_cpus'"),
    ([{"label_selector": {"zone": "in("}}], ValueError, "Invalid label selector value"),
])
def test_bad_fallback_strategies(fallback, error, match):
    with pytest.raises(error, match=match):
        check_fallback_strategy(fallback)


def test_node_labels_reject_rays_reserved_prefix_and_non_strings():
    assert check_node_labels({"zone": "us-1"}) == {"zone": "us-1"}
    assert check_node_labels(None) == {}
    with pytest.raises(ValueError, match="reserved"):
        check_node_labels({"ray.io/node-id": "x"})
    with pytest.raises(TypeError):
        check_node_labels({"zone": 1})
    with pytest.raises(TypeError):
        check_node_labels(["zone"])
    with pytest.raises(ValueError, match="Invalid label key value"):
        check_node_labels({"zone": "-x"})


def test_tray_start_labels_take_rays_key_value_form_and_json():
    assert parse_labels_arg("zone=us-1, tier=fast") == {"zone": "us-1", "tier": "fast"}
    assert parse_labels_arg('{"zone": "us-1"}') == {"zone": "us-1"}
    assert parse_labels_arg("") == {}
    with pytest.raises(ValueError, match="not a key=value pair"):
        parse_labels_arg("zone")
    with pytest.raises(ValueError, match="reserved"):
        parse_labels_arg("ray.io/node-id=x")


# ---------------------------------------------------------------- matching


@given(label_maps, st.sampled_from(KEYS), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True),
       st.booleans())
def test_in_and_not_in_match_their_definitions(labels, key, values, negate):
    text = ("!" if negate else "") + (f"in({','.join(values)})" if len(values) > 1 else values[0])
    has = key in labels and labels[key] in values
    assert matches(labels, parse_selector({key: text})) == (not has if negate else has)


@given(label_maps, st.sampled_from(KEYS))
def test_exists_and_does_not_exist(labels, key):
    assert matches(labels, ((key, "exists", ()),)) == (key in labels)
    assert matches(labels, ((key, "!exists", ()),)) == (key not in labels)


@given(label_maps, st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES + ("!a", "in(a,b)"))))
def test_a_selector_is_the_and_of_its_conditions(labels, selector):
    parsed = parse_selector(selector)
    assert matches(labels, parsed) == all(matches(labels, (c,)) for c in parsed)
    assert parse_selector(eval(describe(parsed))) == parsed  # describe() writes Ray's syntax back


def test_group_of_reads_back_pg_shape():
    assert group_of(pg_shape({"CPU": 10_000}, "ab12", 3)) == ("ab12", 3)
    assert group_of(pg_shape({}, "ab12", -1)) == ("ab12", -1)
    assert group_of({"CPU": 1}) is None


# ------------------------------------------------------------ node choice

node_states = st.dictionaries(
    st.sampled_from(["n0", "n1", "n2", "n3"]),
    st.tuples(st.integers(0, 4), st.integers(0, 4), label_maps).map(
        lambda t: ({"CPU": max(t[0], 1)}, {"CPU": min(t[1], max(t[0], 1))}, t[2])),
    min_size=1,
)
selector_lists = st.lists(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES + ("!a",)), max_size=1)
                          .map(parse_selector), min_size=1, max_size=3)


@given(node_states, selector_lists, st.integers(1, 3))
def test_choose_labelled_takes_the_first_selector_any_able_node_matches(nodes, selectors, cpus):
    shape = {"CPU": cpus}
    here = sorted(nodes)[0]
    chosen = choose_labelled(shape, selectors, here, nodes)
    able = [[n for n, (total, _f, labels) in nodes.items() if total["CPU"] >= cpus and matches(labels, sel)]
            for sel in selectors]
    first = next((i for i, a in enumerate(able) if a), None)
    if first is None:
        assert chosen is None
        return
    node, now, which = chosen
    assert which == first and node in able[first]
    with_room = [n for n in able[first] if nodes[n][1]["CPU"] >= cpus]
    assert now == bool(with_room)
    if with_room:
        assert node in with_room


def test_a_soft_selector_is_preferred_among_the_nodes_with_room():
    nodes = {"n0": ({"CPU": 4}, {"CPU": 4}, {"zone": "a"}), "n1": ({"CPU": 4}, {"CPU": 1}, {"zone": "b"})}
    assert choose_labelled({"CPU": 1}, [()], "n0", nodes, prefer=parse_selector({"zone": "b"}))[0] == "n1"
    assert choose_labelled({"CPU": 1}, [()], "n0", nodes)[0] == "n0"


@given(st.dictionaries(st.sampled_from(["n0", "n1", "n2"]), st.tuples(st.integers(1, 4), st.integers(0, 4)).map(
    lambda t: ({"CPU": t[0]}, {"CPU": min(t[0], t[1])})), min_size=1), st.integers(1, 2))
def test_hybrid_keeps_the_owners_node_below_the_threshold_else_the_least_utilized(nodes, cpus):
    here = sorted(nodes)[0]
    shape = {"CPU": cpus}
    pick = hybrid(shape, here, nodes)
    room = [n for n, (_t, free) in nodes.items() if free["CPU"] >= cpus]
    if not room:
        assert pick is None
        return
    util = {n: utilization(t, f, ["CPU"]) for n, (t, f) in nodes.items()}
    if here in room and util[here] < SPREAD_THRESHOLD:
        assert pick == here
    else:
        assert pick in room and util[pick] == min(util[n] for n in room)


def test_hybrid_fills_the_owners_node_to_half_then_spreads():
    nodes = {"a": ({"CPU": 40_000}, {"CPU": 40_000}), "b": ({"CPU": 40_000}, {"CPU": 40_000})}
    placed = []
    for _ in range(4):
        pick = hybrid({"CPU": 10_000}, "a", nodes)
        placed.append(pick)
        total, free = nodes[pick]
        nodes[pick] = (total, {"CPU": free["CPU"] - 10_000})
    assert placed == ["a", "a", "b", "b"]  # Ray: local until 50% used, then the least used


# ------------------------------------------------- bundle label selectors

eligibility = st.lists(st.one_of(st.none(), st.sets(st.sampled_from(["n0", "n1", "n2", "n3"]))), min_size=1,
                       max_size=4)


@given(node_states, eligibility, st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]))
def test_each_bundle_lands_on_a_node_its_selector_allows(nodes, allowed, strategy):
    free = {n: dict(f) for n, (_t, f, _l) in nodes.items()}
    total = {n: dict(t) for n, (t, _f, _l) in nodes.items()}
    bundles = [{"CPU": 1}] * len(allowed)
    chosen = place(bundles, strategy, free, total, allowed)
    if chosen is not None:
        assert all(ok is None or node in ok for node, ok in zip(chosen, allowed, strict=True))
        for node in set(chosen):  # and never more than the node has
            assert chosen.count(node) <= free[node]["CPU"]
        if strategy == "STRICT_SPREAD":
            assert len(set(chosen)) == len(chosen)
    unconstrained = place(bundles, strategy, free, total)
    if all(ok is None for ok in allowed):
        assert chosen == unconstrained


def test_a_bundle_whose_selector_matches_no_node_can_never_be_placed():
    total = {"n0": {"CPU": 4}, "n1": {"CPU": 4}}
    assert feasible_ever([{"CPU": 1}, {"CPU": 1}], "PACK", total, [None, set()]) == \
        "bundle 1's label selector matches no node"
    assert feasible_ever([{"CPU": 1}, {"CPU": 1}], "STRICT_PACK", total, [{"n0"}, {"n1"}]) is not None
    assert feasible_ever([{"CPU": 1}, {"CPU": 1}], "STRICT_SPREAD", total, [{"n0"}, {"n1"}]) is None
    assert place([{"CPU": 1}, {"CPU": 1}], "PACK", total, total, [{"n1"}, None]) == ["n1", "n1"]
