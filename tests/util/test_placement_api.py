"""Ray's placement group and scheduling strategy API: argument checks (no cluster needed),
pickling, and the conversation with the control store, held with a stand-in control store
on a bare trio loop (the end-to-end tests against the real one live with the cluster)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import cloudpickle
import pytest
import trio

import tray
import tray.util
from tray._config import Settings
from tray.core import _runtime
from tray.core._lanes import Lanes
from tray.core._objects import ObjectTable
from tray.exceptions import GetTimeoutError, RayError
from tray.util.placement_group import (
    PlacementGroup,
    PlacementGroupID,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from tray.util.scheduling_strategies import (
    DoesNotExist,
    Exists,
    In,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
    NotIn,
    PlacementGroupSchedulingStrategy,
)


@pytest.fixture
def no_cluster() -> Iterator[None]:
    """The checks must fail before tray starts anything."""
    assert _runtime.current() is None
    yield
    assert _runtime.current() is None, "a failed call started tray"


def _pg(n: int = 2) -> PlacementGroup:
    return PlacementGroup(PlacementGroupID.from_random(), [{"CPU": 1.0}] * n)


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"bundles": []}, ValueError, "non-empty list"),
    ({"bundles": {"CPU": 1}}, ValueError, "must be a list"),
    ({"bundles": [{"CPU": 1}, {}]}, ValueError, "Bundle 1 is an empty dict"),
    ({"bundles": [{"CPU": 0}]}, ValueError, "only 0 values"),
    ({"bundles": [{"CPU": -1}]}, ValueError, ">= 0"),
    ({"bundles": [{"CPU": "1"}]}, ValueError, "numbers"),
    ({"bundles": [{"CPU": 1}], "strategy": "pack"}, ValueError, "Invalid placement group strategy 'pack'"),
    ({"bundles": [{"CPU": 1}], "strategy": None}, ValueError, "STRICT_SPREAD"),
    ({"bundles": [{"CPU": 1}], "name": None}, TypeError, "name must be a str"),
    ({"bundles": [{"CPU": 1}], "lifetime": "forever"}, ValueError, "lifetime"),
    ({"bundles": [{"CPU": 1}], "_max_cpu_fraction_per_node": 1.5}, ValueError, "between 0 and 1"),
    ({"bundles": [{"CPU": 1}], "_max_cpu_fraction_per_node": 0.5}, NotImplementedError, "_max_cpu_fraction"),
    ({"bundles": [{"CPU": 1}], "_soft_target_node_id": "ab"}, ValueError, "only works with STRICT_PACK"),
    ({"bundles": [{"CPU": 1}], "bundle_label_selector": [{}, {}]}, ValueError, "should equal the length of"),
    ({"bundles": [{"CPU": 1}], "bundle_label_selector": {"zone": "a"}}, ValueError, "must be a list"),
    ({"bundles": [{"CPU": 1}], "bundle_label_selector": [{"zone": 1}]}, ValueError, r"\[0\]: Bundle label selector"),
    ({"bundles": [{"CPU": 1}], "bundle_label_selector": [{"zone": "in(a"}]}, ValueError, "Invalid label selector"),
])
def test_placement_group_checks_its_arguments_before_reaching_the_cluster(no_cluster, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        placement_group(**kwargs)


def test_the_other_calls_check_their_arguments(no_cluster) -> None:
    with pytest.raises(TypeError, match="PlacementGroup"):
        remove_placement_group("pg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        get_placement_group("")
    with pytest.raises(TypeError, match="PlacementGroup or None"):
        placement_group_table("pg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_seconds"):
        _pg().wait(-1)
    with pytest.raises(ValueError, match="empty placement group"):
        PlacementGroup.empty().ready()
    assert get_current_placement_group() is None  # in a driver, and without starting tray


def test_ray_util_exposes_the_placement_group_functions() -> None:
    assert tray.util.placement_group is placement_group  # the function, as in Ray
    assert tray.util.get_placement_group is get_placement_group
    assert tray.util.placement_group_table is placement_group_table


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: PlacementGroupSchedulingStrategy("pg"), TypeError, "placement_group must be a PlacementGroup"),
    (lambda: PlacementGroupSchedulingStrategy(_pg(), "0"), TypeError, "placement_group_bundle_index must be an int"),
    (lambda: PlacementGroupSchedulingStrategy(_pg(), True), TypeError, "placement_group_bundle_index"),
    (lambda: PlacementGroupSchedulingStrategy(_pg(2), 2), ValueError, "bundle index 2 is invalid.*0-1"),
    (lambda: PlacementGroupSchedulingStrategy(_pg(2), -2), ValueError, "bundle index -2 is invalid"),
    (lambda: PlacementGroupSchedulingStrategy(None, 0), ValueError, "must be -1"),
    (lambda: PlacementGroupSchedulingStrategy(PlacementGroup.empty(), 1), ValueError, "must be -1"),
    (lambda: PlacementGroupSchedulingStrategy(_pg(), 0, "yes"), TypeError, "placement_group_capture_child_tasks"),
    (lambda: NodeAffinitySchedulingStrategy(3, soft=False), TypeError, "node_id"),
    (lambda: NodeAffinitySchedulingStrategy("", soft=False), TypeError, "node_id"),
    (lambda: NodeAffinitySchedulingStrategy("ab", soft=None), TypeError, "soft must be a bool"),
    (lambda: NodeAffinitySchedulingStrategy("ab", soft=False, _spill_on_unavailable=True), ValueError,
     "_spill_on_unavailable.*soft is True"),
    (lambda: NodeAffinitySchedulingStrategy("ab", soft=True, _fail_on_unavailable=True), ValueError,
     "_fail_on_unavailable.*soft is False"),
    (lambda: NodeLabelSchedulingStrategy({}), ValueError, "cannot both be empty"),
    (lambda: NodeLabelSchedulingStrategy(["zone"]), ValueError, "hard parameter must be a map"),
    (lambda: NodeLabelSchedulingStrategy({"zone": "a"}), ValueError, "must be an operator"),
    (lambda: NodeLabelSchedulingStrategy({1: In("a")}), ValueError, "must be of type str"),
    (lambda: NodeLabelSchedulingStrategy({"a": In("x")}, soft=[1]), ValueError, "soft parameter must be a map"),
    (lambda: In(), ValueError, "non-empty tuple"),
    (lambda: NotIn("a", 2), ValueError, "position 1 for the NotIn operator"),
])
def test_strategies_check_their_arguments(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


def test_strategies_keep_rays_attributes() -> None:
    pg = _pg(3)
    s = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=2, placement_group_capture_child_tasks=True)
    assert (s.placement_group, s.placement_group_bundle_index, s.placement_group_capture_child_tasks) == (pg, 2, True)
    s = PlacementGroupSchedulingStrategy(placement_group=None)
    assert (s.placement_group, s.placement_group_bundle_index) == (None, -1)
    assert s.placement_group_capture_child_tasks is None
    n = NodeAffinitySchedulingStrategy(node_id="ab12", soft=True, _spill_on_unavailable=True)
    assert (n.node_id, n.soft, n._spill_on_unavailable, n._fail_on_unavailable) == ("ab12", True, True, False)
    assert NodeAffinitySchedulingStrategy(PlacementGroupID(b"\x01" * 18), soft=False).node_id == "01" * 18
    label = NodeLabelSchedulingStrategy({"zone": In("a", "b")}, soft={"gpu": Exists(), "old": DoesNotExist()})
    assert label.hard == {"zone": In("a", "b")} and label.soft == {"gpu": Exists(), "old": DoesNotExist()}
    assert NodeLabelSchedulingStrategy(hard=None, soft={"x": NotIn("y")}).hard == {}
    # an unknown-size group (a handle made from an id alone) defers the index check
    unknown = PlacementGroup(PlacementGroupID.from_random())
    assert PlacementGroupSchedulingStrategy(unknown, 5).placement_group_bundle_index == 5


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_strategies_and_groups_pickle(dumps) -> None:
    pg = _pg(2)
    back = pickle.loads(dumps(pg))
    assert back == pg and hash(back) == hash(pg) and back.bundle_specs == [{"CPU": 1.0}] * 2
    assert back.bundle_count == 2 and back.id.hex() == pg.id.hex() and len(pg.id.hex()) == 36
    assert pg != _pg(2) and PlacementGroup(pg.id) == pg and {pg, back} == {pg}
    for strategy in [
        PlacementGroupSchedulingStrategy(pg, 1, False),
        NodeAffinitySchedulingStrategy("ab12", soft=False, _fail_on_unavailable=True),
        NodeLabelSchedulingStrategy({"zone": In("a")}, soft={"gpu": NotIn("t4", "k80")}),
    ]:
        again = pickle.loads(dumps(strategy))
        assert type(again) is type(strategy) and vars(again) == vars(strategy)
    assert pickle.loads(dumps(PlacementGroupID.nil())).is_nil()


# ------------------------------------------------------- with a stand-in control store


class _Method:
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    async def ask(self, *args: Any) -> Any:
        return await self.fn(*args)


class FakeControl:
    """The control store's placement group messages, as specified, with the placement
    itself done by the test (``place``)."""

    def __init__(self) -> None:
        self.pgs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, trio.Event] = {}
        self.calls: list[tuple[Any, ...]] = []
        for name in ("create_placement_group", "wait_placement_group", "remove_placement_group",
                     "placement_group_info"):
            setattr(self, name, _Method(getattr(self, "_" + name)))

    async def _create_placement_group(self, pg_id: str, bundles: list[dict[str, float]], strategy: str, name: str,
                                      namespace: str, detached: bool, job_id: str,
                                      selectors: list[dict[str, str]] | None = None) -> None:
        self.calls.append(("create", pg_id, bundles, strategy, name, namespace, detached, job_id))
        if name and any(r["name"] == name and r["namespace"] == namespace and r["state"] != "REMOVED"
                        for r in self.pgs.values()):
            raise ValueError(f"a placement group named {name!r} already exists")
        self.pgs[pg_id] = {"placement_group_id": pg_id, "name": name, "namespace": namespace, "bundles": bundles,
                           "bundles_to_node_id": None, "strategy": strategy, "state": "PENDING"}
        self.events[pg_id] = trio.Event()

    async def _wait_placement_group(self, pg_id: str) -> None:
        await self.events[pg_id].wait()
        if self.pgs[pg_id]["state"] == "REMOVED":
            raise RayError(f"placement group {pg_id} was removed")

    async def _remove_placement_group(self, pg_id: str) -> None:
        self.pgs[pg_id].update(state="REMOVED", bundles_to_node_id=None)
        self.events[pg_id].set()

    async def _placement_group_info(self, pg_id: str | None, name: str | None,
                                    namespace: str | None) -> list[dict[str, Any]]:
        self.calls.append(("info", pg_id, name, namespace))
        return [dict(r) for r in self.pgs.values() if (pg_id is None or r["placement_group_id"] == pg_id)
                and (name is None or (r["name"] == name and r["namespace"] == namespace))]

    def place(self, pg_id: str, nodes: list[str]) -> None:  # in the loop
        self.pgs[pg_id].update(state="CREATED", bundles_to_node_id=nodes)
        self.events[pg_id].set()


class FakeRuntime:
    """What the placement group API uses of ``Runtime``: a trio loop in a thread, its
    nursery and lanes, an object table, the namespace and job, and ``control``."""

    def __init__(self, control: FakeControl) -> None:
        self.control = control
        self.table = ObjectTable("fake.", lambda: None)
        self.namespace, self.job_id = "ns1", "job1"
        self.current_task_id = self.worker_id = self.session_dir = None
        self.node_id, self.node_address, self.token = "node1", "fake://node1", "cluster-token"
        self.closed = False
        self.settings = Settings()  # the defaults a runtime resolves (what a waiting tray.get reads)
        started = threading.Event()

        async def main() -> None:
            self.trio_token = trio.lowlevel.current_trio_token()
            self.done = trio.Event()
            async with trio.open_nursery() as nursery:
                # lanes with no actor behind them: no call is ever held for one
                self.owner = SimpleNamespace(nursery=nursery, calls=SimpleNamespace(lanes=Lanes(self, None)))
                started.set()
                await self.done.wait()
                nursery.cancel_scope.cancel()

        self.thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self.thread.start()
        started.wait()

    def call(self, afn: Any, *args: Any) -> Any:
        return trio.from_thread.run(afn, *args, trio_token=self.trio_token)

    def soon(self, fn: Any, *args: Any) -> None:
        self.trio_token.run_sync_soon(fn, *args)

    def in_loop(self) -> bool:
        return threading.current_thread() is self.thread

    def stop(self) -> None:
        self.trio_token.run_sync_soon(self.done.set)
        self.thread.join(5)


@pytest.fixture
def fake() -> Iterator[tuple[FakeRuntime, FakeControl]]:
    assert _runtime.current() is None
    control = FakeControl()
    rt = FakeRuntime(control)
    _runtime.install(rt)  # type: ignore[arg-type]
    try:
        yield rt, control
    finally:
        _runtime.install(None)
        rt.stop()


def test_placement_group_sends_rays_request_and_ready_resolves_once_placed(fake) -> None:
    rt, control = fake
    pg = placement_group([{"CPU": 1}, {"GPU": 0.5}], strategy="STRICT_SPREAD", name="g", lifetime="detached")
    assert control.calls[0] == ("create", pg.id.hex(), [{"CPU": 1.0}, {"GPU": 0.5}], "STRICT_SPREAD", "g", "ns1",
                                True, "job1")
    assert pg.bundle_specs == [{"CPU": 1.0}, {"GPU": 0.5}] and pg.bundle_count == 2
    ready = pg.ready()
    assert tray.wait([ready], timeout=0.05) == ([], [ready])
    assert pg.wait(timeout_seconds=0.05) is False
    assert placement_group_table(pg)["state"] == "PENDING"
    assert placement_group_table(pg)["bundles_to_node_id"] == {0: "", 1: ""}
    rt.call(_in_loop, control.place, pg.id.hex(), ["n1", "n2"])
    assert tray.get(ready, timeout=5) == pg
    assert tray.wait([pg.ready()], timeout=5)[0]
    assert pg.wait(5) is True
    assert placement_group_table(pg) == {
        "placement_group_id": pg.id.hex(), "name": "g", "bundles": {0: {"CPU": 1.0}, 1: {"GPU": 0.5}},
        "bundles_to_node_id": {0: "n1", 1: "n2"}, "strategy": "STRICT_SPREAD", "state": "CREATED"}


async def _in_loop(fn: Any, *args: Any) -> None:
    fn(*args)


def test_names_tables_and_removal(fake) -> None:
    rt, control = fake
    a = placement_group([{"CPU": 1}], name="a")
    b = placement_group([{"CPU": 2}] * 3, strategy="SPREAD")
    assert control.calls[-1][6] is False  # not detached
    with pytest.raises(ValueError, match="already exists"):
        placement_group([{"CPU": 1}], name="a")
    found = get_placement_group("a")
    assert found == a and found.bundle_specs == [{"CPU": 1.0}]
    assert control.calls[-1] == ("info", None, "a", "ns1")
    with pytest.raises(ValueError, match="Failed to look up placement group with name: nope"):
        get_placement_group("nope")
    table = placement_group_table()
    assert set(table) == {a.id.hex(), b.id.hex()}
    assert table[b.id.hex()]["bundles"] == {i: {"CPU": 2.0} for i in range(3)}
    assert placement_group_table(PlacementGroup(PlacementGroupID.from_random())) == {}
    # a handle made from an id alone asks the control store for its bundles
    assert PlacementGroup(b.id).bundle_count == 3
    waiting = b.ready()
    remove_placement_group(b)
    with pytest.raises(RayError, match="was removed"):
        tray.get(waiting, timeout=5)
    with pytest.raises(RayError):
        b.wait(1)
    assert placement_group_table(b)["state"] == "REMOVED"
    remove_placement_group(a)
    with pytest.raises(ValueError):
        get_placement_group("a")  # a removed group's name is free again
    placement_group([{"CPU": 1}], name="a")


def test_ready_refs_time_out_like_any_other(fake) -> None:
    _rt, _control = fake
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(GetTimeoutError):
        tray.get(pg.ready(), timeout=0.05)


def test_without_a_control_store_the_calls_say_so(fake) -> None:
    rt, _control = fake
    rt.control = None
    with pytest.raises(RuntimeError, match="control store"):
        placement_group([{"CPU": 1}])
