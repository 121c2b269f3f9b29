"""Labels, label selectors, Ray's default actor placement and placement groups that wait
for a node, on a real three-node cluster (node processes on loopback)."""

from __future__ import annotations

import collections

import pytest

import tray
from tray.cluster_utils import Cluster
from tray.exceptions import TaskUnschedulableError
from tray.util.placement_group import placement_group, remove_placement_group
from tray.util.scheduling_strategies import (
    In,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
    NotIn,
    PlacementGroupSchedulingStrategy,
)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "labels": {"zone": "a"}})
    c.b = c.add_node(num_cpus=2, labels={"zone": "b", "tier": "fast"})
    c.c = c.add_node(num_cpus=2)
    tray.init(address=c.address)
    c.ids = {"a": c.head_node.node_id, "b": c.b.node_id, "c": c.c.node_id}
    yield c
    tray.shutdown()
    c.shutdown()


@tray.remote
def node_of() -> str:
    return tray.get_runtime_context().get_node_id()


@tray.remote(num_cpus=0)
class Where:
    def node(self) -> str:
        return tray.get_runtime_context().get_node_id()


def _where(cluster, **options) -> str:
    node = tray.get(node_of.options(**options).remote(), timeout=60)
    return next(name for name, node_id in cluster.ids.items() if node_id == node)


def test_nodes_carry_their_labels_and_rays_node_id_label(cluster):
    labels = {n["NodeID"]: n["Labels"] for n in tray.nodes() if n["Alive"]}
    assert labels[cluster.ids["a"]] == {"ray.io/node-id": cluster.ids["a"], "zone": "a"}
    assert labels[cluster.ids["b"]] == {"ray.io/node-id": cluster.ids["b"], "zone": "b", "tier": "fast"}
    assert labels[cluster.ids["c"]] == {"ray.io/node-id": cluster.ids["c"]}


@pytest.mark.parametrize(("selector", "allowed"), [
    ({"zone": "b"}, {"b"}),
    ({"tier": "fast"}, {"b"}),
    ({"zone": "!b"}, {"a", "c"}),  # a node without the label matches a negation, as in Ray
    ({"zone": "in(a,b)"}, {"a", "b"}),
    ({"zone": "!in(a,b)"}, {"c"}),
])
def test_a_label_selector_keeps_tasks_on_matching_nodes(cluster, selector, allowed):
    seen = {_where(cluster, label_selector=selector) for _ in range(3)}
    assert seen <= allowed


def test_rays_node_id_label_pins_a_task_to_a_node(cluster):
    assert _where(cluster, label_selector={"ray.io/node-id": cluster.ids["c"]}) == "c"


def test_fallback_strategies_are_tried_in_order(cluster):
    fallback = [{"label_selector": {"zone": "nowhere"}}, {"label_selector": {"zone": "b"}},
                {"label_selector": {"zone": "a"}}]
    assert _where(cluster, label_selector={"zone": "x"}, fallback_strategy=fallback) == "b"


def test_an_actor_follows_its_label_selector(cluster):
    actor = Where.options(label_selector={"zone": "a"}).remote()
    assert tray.get(actor.node.remote(), timeout=60) == cluster.ids["a"]
    tray.kill(actor)


def test_nothing_matching_anywhere_fails_at_once_naming_the_selector(cluster):
    with pytest.raises(TaskUnschedulableError, match=r"labels match \{'zone': 'mars'\}"):
        tray.get(node_of.options(label_selector={"zone": "mars"}).remote(), timeout=60)


def test_node_label_scheduling_strategy_hard_and_soft(cluster):
    assert _where(cluster, scheduling_strategy=NodeLabelSchedulingStrategy({"zone": In("b")})) == "b"
    assert _where(cluster, scheduling_strategy=NodeLabelSchedulingStrategy(
        {"zone": NotIn("b")}, soft={"zone": In("a")})) == "a"


def test_spread_spreads_actors_over_every_node(cluster):
    actors = [Where.options(scheduling_strategy="SPREAD").remote() for _ in range(6)]
    nodes = collections.Counter(tray.get([a.node.remote() for a in actors], timeout=120))
    for a in actors:
        tray.kill(a)
    assert set(nodes) == set(cluster.ids.values())


def test_actors_that_ask_for_nothing_spread_as_rays_default_does(cluster):
    actors = [Where.remote() for _ in range(9)]
    nodes = set(tray.get([a.node.remote() for a in actors], timeout=120))
    for a in actors:
        tray.kill(a)
    assert len(nodes) >= 2  # a random node each (all on one of 3 nodes: p = 3 / 3**9)


def test_a_placement_group_task_waits_for_the_node_that_can_hold_its_group(cluster):
    pg = placement_group([{"CPU": 1, "late": 1}])
    ref = node_of.options(num_cpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    ready, _ = tray.wait([ref], timeout=1)
    assert ready == []  # pending until a node with "late" joins, not unschedulable
    late = cluster.add_node(num_cpus=1, resources={"late": 1})
    try:
        assert tray.get(ref, timeout=120) == late.node_id
    finally:
        remove_placement_group(pg)
        cluster.remove_node(late)


def test_bundle_label_selectors_put_each_bundle_on_a_matching_node(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD",
                         bundle_label_selector=[{"zone": "b"}, {"zone": "!in(a,b)"}])
    try:
        assert pg.wait(60)
        for index, name in ((0, "b"), (1, "c")):
            strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)
            assert _where(cluster, scheduling_strategy=strategy) == name
    finally:
        remove_placement_group(pg)
    nowhere = placement_group([{"CPU": 1}], bundle_label_selector=[{"zone": "mars"}])
    assert not nowhere.wait(1)  # pending, as in Ray, until a node with the label joins
    remove_placement_group(nowhere)


def test_actors_that_ask_for_resources_fill_the_owners_node_to_half_then_the_least_used(cluster):
    actors = []
    for _ in range(4):  # one at a time: each choice sees the ones before it
        actor = Where.options(num_cpus=0.5).remote()
        tray.get(actor.node.remote(), timeout=60)
        actors.append(actor)
    nodes = collections.Counter(tray.get([a.node.remote() for a in actors], timeout=60))
    for a in actors:
        tray.kill(a)
    # the driver's node (the head, 1 CPU) takes one: at half use, Ray's hybrid policy moves on
    assert nodes[cluster.ids["a"]] == 1 and len(nodes) == 3


def test_a_label_selector_narrows_a_placement_group_as_in_ray(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD",
                         bundle_label_selector=[{"zone": "b"}, {"zone": "!in(a,b)"}])
    try:
        assert pg.wait(60)
        in_group = PlacementGroupSchedulingStrategy(pg)
        for _ in range(2):
            assert _where(cluster, scheduling_strategy=in_group, label_selector={"zone": "!b"}) == "c"
            assert _where(cluster, scheduling_strategy=in_group, label_selector={"tier": "fast"}) == "b"
        with pytest.raises(TaskUnschedulableError, match="labels match"):  # none of the group's nodes has it
            _where(cluster, scheduling_strategy=in_group, label_selector={"zone": "a"})
    finally:
        remove_placement_group(pg)


def test_a_label_selector_narrows_node_affinity_as_in_ray(cluster):
    b, c = cluster.ids["b"], cluster.ids["c"]
    assert _where(cluster, scheduling_strategy=NodeAffinitySchedulingStrategy(b, soft=False),
                  label_selector={"zone": "b"}) == "b"
    with pytest.raises(TaskUnschedulableError, match="labels match"):  # both must hold
        _where(cluster, scheduling_strategy=NodeAffinitySchedulingStrategy(c, soft=False),
               label_selector={"zone": "b"})
    # soft: the node is only a preference, the selector is not
    assert _where(cluster, scheduling_strategy=NodeAffinitySchedulingStrategy(c, soft=True),
                  label_selector={"zone": "b"}) == "b"
    assert _where(cluster, scheduling_strategy=NodeAffinitySchedulingStrategy(c, soft=True),
                  label_selector={"zone": "!a"}) == "c"
