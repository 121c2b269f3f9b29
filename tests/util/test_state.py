"""tray.util.state: task records and the cluster-wide state API, on a real local node and on
a real two-node cluster (head + one node, each its own process).

Tasks that must be seen running block on a file: each writes ``started`` (its pid) and
waits until ``release`` exists, so the test knows when to look without sleeping.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tray
from tray.cluster_utils import Cluster
from tray.core import _gather
from tray.core._tasklog import NORMAL_TASK, TaskLog, record
from tray.exceptions import ActorDiedError, RayTaskError
from tray.testing import wait_for_condition
from tray.util import state
from tray.util.placement_group import placement_group, remove_placement_group
from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


def wait_for(path: Path) -> str:
    """The file's text once it exists."""
    wait_for_condition(path.exists, timeout=30, retry_interval_ms=10)
    return path.read_text()


def _block(started: str, release: str) -> int:
    Path(started + ".tmp").write_text(str(os.getpid()))
    os.replace(started + ".tmp", started)  # whole when it appears
    while not os.path.exists(release):
        time.sleep(0.01)
    return os.getpid()


@tray.remote
def block(started: str, release: str) -> int:
    return _block(started, release)


@tray.remote
def add(x: int, y: int = 0) -> int:
    return x + y


@tray.remote
def boom() -> None:
    raise ValueError("boom")


@tray.remote(max_retries=2, retry_exceptions=True)
def flaky(marker: str) -> int:
    if not os.path.exists(marker):
        Path(marker).touch()
        raise ValueError("first attempt fails")
    return 1


@tray.remote
def parent() -> int:
    return tray.get(add.remote(1, 2))  # submitted by this worker: its owner records it


@tray.remote
class Gate:
    def wait(self, started: str, release: str) -> int:
        return _block(started, release)

    def ping(self) -> str:
        return "pong"

    def fail(self) -> None:
        raise KeyError("nope")

    def keep(self, refs: list) -> int:
        self.refs = refs  # a nested ref stays a ref: this worker borrows it
        return os.getpid()


def by_name(**filters: Any) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in state.list_tasks(filters=[(k, "=", v) for k, v in filters.items()], limit=None, detail=True):
        rows.setdefault(r["name"], []).append(r)
    return rows


# ---------------------------------------------------------------------------- no processes


class Call:  # what the task log reads of an actor call
    def __init__(self, n: int) -> None:
        self.return_ids, self.method, self.actor_id = [f"c{n}"] if n else [], "m", "actor"
        self.stream = None  # not a streaming call


def test_task_log_keeps_live_tasks_and_the_newest_finished() -> None:
    log = TaskLog(lambda: "job", max_finished=3)
    for i in range(4):
        log.add(i, record(f"t{i}", "f", NORMAL_TASK, "job", None, None, "PENDING_NODE_ASSIGNMENT"))
    log.add("live", record("t-live", "g", NORMAL_TASK, "job", None, None, "PENDING_ARGS_AVAIL"))
    for i in range(4):
        log.end(i, None if i % 2 else RayTaskError.from_exception(ValueError("x" * 10_000), "f"))
    log.end(3)  # a second end is a no-op
    sent, queued, lost = Call(1), Call(2), Call(0)
    for call in (sent, queued, lost):
        log.call_submitted(call)
    log.call_retried(sent)
    log.call_sent(sent)
    assert log.call_row(queued, "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY")["start_time_ms"] is None
    assert log.call_row(sent, "SUBMITTED_TO_WORKER")["attempt_number"] == 1
    log.call_ended(sent)
    log.call_ended(lost, ActorDiedError("gone"), sent=False)
    rows = log.rows()
    assert [r["task_id"] for r in rows[:2]] == ["t3", "c1"] and rows[3]["task_id"] == "t-live"
    assert [r["state"] for r in rows] == ["FINISHED", "FINISHED", "FAILED", "PENDING_ARGS_AVAIL"]
    assert rows[1]["type"] == "ACTOR_TASK" and rows[1]["attempt_number"] == 1 and rows[1]["start_time_ms"]
    assert rows[2]["error_type"] == "ACTOR_DIED" and rows[2]["start_time_ms"] is None
    assert rows[2]["task_id"].startswith("call-")  # a call without results has an id of its own
    log = TaskLog(lambda: "job")
    log.add(0, record("t", "f", NORMAL_TASK, "job", None, None, "PENDING_NODE_ASSIGNMENT"))
    log.end(0, RayTaskError.from_exception(ValueError("x" * 10_000), "f"))
    (row,) = log.rows()
    assert row["error_type"] == "TASK_EXECUTION_EXCEPTION" and 4096 < len(row["error_message"]) < 4100
    assert not log.live and not log.calls and not log.sent and not log.retries  # nothing left behind
    gc.collect()
    assert not gc.is_tracked(log.finished[0]) and not gc.is_tracked(record("t", "f", NORMAL_TASK, "j", None, None,
                                                                           "PENDING_ARGS_AVAIL"))  # cost no GC time


# ------------------------------------------------- a local node, then a two-node cluster


@pytest.fixture(scope="class")
def local() -> Iterator[None]:
    tray.init(num_cpus=2)
    yield
    tray.shutdown()


@pytest.fixture(scope="class")
def cluster() -> Iterator[Cluster]:
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.far = c.add_node(num_cpus=1, resources={"far": 1})  # type: ignore[attr-defined]
    tray.init(address=c.address)
    yield c
    c.shutdown()


@pytest.mark.usefixtures("local")
class TestLocal:
    def test_tasks_from_pending_to_running_finished_and_failed(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            tray.get(boom.remote())
        go = tmp_path / "go"
        b1 = block.remote(str(tmp_path / "s1"), str(go))
        _b2 = block.remote(str(tmp_path / "s2"), str(go))  # held: its task must run beside b1's
        pids = {int(wait_for(tmp_path / "s1")), int(wait_for(tmp_path / "s2"))}
        wide = add.options(num_cpus=2).remote(1)  # no room while both run: waits for a lease
        dep = add.remote(b1, 1)  # waits for b1's result
        rows = by_name()
        node = tray.get_runtime_context().get_node_id()
        assert [r["state"] for r in rows["block"]] == ["RUNNING", "RUNNING"]
        assert {r["worker_pid"] for r in rows["block"]} == pids and {r["node_id"] for r in rows["block"]} == {node}
        assert sorted(r["state"] for r in rows["add"]) == ["PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT"]
        assert rows["add"][0]["node_id"] is None and rows["add"][0]["start_time_ms"] is None
        failed = rows["boom"][0]
        assert failed["state"] == "FAILED" and failed["error_type"] == "TASK_EXECUTION_EXCEPTION"
        assert "ValueError: boom" in failed["error_message"] and failed["end_time_ms"] >= failed["start_time_ms"]
        assert failed["job_id"] == tray.get_runtime_context().get_job_id() and failed["type"] == "NORMAL_TASK"
        go.touch()
        assert tray.get([wide, dep]) == [1, tray.get(b1) + 1]
        rows = by_name()
        assert {r["state"] for r in rows["block"] + rows["add"]} == {"FINISHED"}
        assert rows["block"][0]["creation_time_ms"] > rows["boom"][0]["creation_time_ms"]  # newest first

    def test_actor_calls_and_creation(self, tmp_path: Path) -> None:
        gate = Gate.remote()
        assert tray.get(gate.ping.remote()) == "pong"
        waiting = gate.wait.remote(str(tmp_path / "started"), str(tmp_path / "go"))
        pid = int(wait_for(tmp_path / "started"))
        queued = gate.ping.remote()  # sent to the actor, which runs the wait first
        rows = by_name(actor_id=gate._actor_id)
        assert rows["Gate.__init__"][0]["type"] == "ACTOR_CREATION_TASK"
        assert rows["Gate.__init__"][0]["state"] == "FINISHED" and rows["Gate.__init__"][0]["worker_pid"] == pid
        assert rows["Gate.wait"][0]["state"] == "RUNNING" and rows["Gate.wait"][0]["worker_pid"] == pid
        assert rows["Gate.wait"][0]["type"] == "ACTOR_TASK"
        assert sorted(r["state"] for r in rows["Gate.ping"]) == ["FINISHED", "SUBMITTED_TO_WORKER"]
        (tmp_path / "go").touch()
        assert tray.get([waiting, queued]) == [pid, "pong"]
        with pytest.raises(KeyError):
            tray.get(gate.fail.remote())
        failed = by_name(name="Gate.fail")["Gate.fail"][0]
        assert failed["state"] == "FAILED" and failed["error_type"] == "TASK_EXECUTION_EXCEPTION"
        assert state.get_actor(gate._actor_id)["state"] == "ALIVE"
        tray.kill(gate)
        wait_for_condition(lambda: state.get_actor(gate._actor_id)["state"] == "DEAD", timeout=30)
        assert state.summarize_actors()["cluster"]["summary"]["Gate"]["state_counts"]["DEAD"] >= 1

    def test_a_retried_task_shows_its_attempt(self, tmp_path: Path) -> None:
        assert tray.get(flaky.remote(str(tmp_path / "marker"))) == 1
        row = state.list_tasks(filters=[("name", "=", "flaky")])[0]
        assert row["state"] == "FINISHED" and row["attempt_number"] == 1
        assert state.get_task(row["task_id"])["end_time_ms"] is not None and state.get_task("no-such") is None

    def test_filters_limit_and_detail(self) -> None:
        tray.get([add.remote(i) for i in range(5)])
        adds = state.list_tasks(filters=[("name", "=", "add")], limit=None)
        assert len(adds) >= 5 and {r["name"] for r in adds} == {"add"} and "error_message" not in adds[0]
        assert len(state.list_tasks(filters=[("name", "=", "add")], limit=2)) == 2
        others = state.list_tasks(filters=[("name", "!=", "add"), ("state", "=", "FINISHED")], limit=None)
        assert others and all(r["name"] != "add" and r["state"] == "FINISHED" for r in others)
        assert "error_message" in state.list_tasks(limit=1, detail=True)[0]
        summary = state.summarize_tasks()["cluster"]
        assert summary["summary"]["add"]["state_counts"]["FINISHED"] == len(adds)
        with pytest.raises(ValueError, match="unknown filter key 'colour'; valid keys: task_id, "):
            state.list_tasks(filters=[("colour", "=", "red")])
        with pytest.raises(ValueError, match="node_ip"):
            state.list_nodes(filters=[("ip", "=", "127.0.0.1")])
        with pytest.raises(ValueError, match="predicate"):
            state.list_tasks(filters=[("name", ">", "a")])

    def test_nodes_jobs_workers_and_objects(self) -> None:
        node = tray.get_runtime_context().get_node_id()
        (row,) = state.list_nodes()
        assert row["node_id"] == node and row["is_head_node"] and row["state"] == "ALIVE"
        job = state.get_job(tray.get_runtime_context().get_job_id())
        assert job["status"] == "RUNNING" and job["driver_info"]["pid"] == os.getpid()
        workers = state.list_workers(limit=None)
        assert [w["pid"] for w in workers if w["worker_type"] == "DRIVER"] == [os.getpid()]
        assert any(w["worker_type"] == "WORKER" and w["node_id"] == node for w in workers)
        ref = tray.put(b"x" * 200_000)
        (obj,) = state.get_objects(ref.hex())
        assert obj["type"] == "DRIVER" and obj["node_id"] == node and obj["storage"] == "shared_memory"
        summary = state.summarize_objects()
        assert summary["total_objects"] >= 1 and summary["store"] == summary["stores"][node]

    def test_memory_summary_without_the_store_of_its_node_says_so(self, monkeypatch: Any) -> None:
        assert "--- Object store ---" in state.memory_summary()
        node = tray.get_runtime_context().get_node_id()
        real = _gather.objects

        async def store_left_out(system: Any, control: Any) -> Any:  # as when the node's store does not answer
            rows, _stores = await real(system, control)
            return rows, {}

        monkeypatch.setattr(_gather, "objects", store_left_out)
        with pytest.raises(ConnectionError, match=f"the object store of node {node} did not answer in time; "
                                                  "nodes whose stores answered: none"):
            state.memory_summary()
        with pytest.raises(ConnectionError, match="no live head node answered"):
            state.home_store({node: {}}, None)  # outside a driver, a cluster whose node table has no ALIVE head

    def test_a_process_that_does_not_answer_costs_a_timeout_not_a_hang(self, monkeypatch: Any) -> None:
        monkeypatch.setattr(_gather, "ASK_TIMEOUT_S", 0.5)
        pid = next(w["pid"] for w in state.list_workers(limit=None) if w["worker_type"] == "WORKER")
        os.kill(pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            assert state.list_tasks(filters=[("name", "=", "add")])
            assert time.monotonic() - start < 5.0
        finally:
            os.kill(pid, signal.SIGCONT)


class TestCluster:
    def test_running_tasks_on_each_node_and_a_worker_submitted_task(self, cluster: Cluster, tmp_path: Path) -> None:
        head, far = cluster.head_node.node_id, cluster.far.node_id  # type: ignore[union-attr, attr-defined]
        go = tmp_path / "go"
        there = block.options(resources={"far": 1}).remote(str(tmp_path / "far"), str(go))
        here = block.options(scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False)).remote(
            str(tmp_path / "head"), str(go))
        pids = {far: int(wait_for(tmp_path / "far")), head: int(wait_for(tmp_path / "head"))}
        rows = by_name(name="block")["block"]
        assert {r["node_id"]: r["worker_pid"] for r in rows if r["state"] == "RUNNING"} == pids
        go.touch()
        tray.get([there, here])
        outer = parent.options(resources={"far": 1}).remote()
        assert tray.get(outer) == 3
        (outer_row,) = by_name(name="parent")["parent"]
        (child,) = [r for r in by_name(name="add").get("add", []) if r["parent_task_id"] == outer_row["task_id"]]
        assert child["state"] == "FINISHED" and child["job_id"] == outer_row["job_id"]
        assert outer_row["node_id"] == far

    def test_actors_nodes_jobs_workers_objects_and_placement_groups(self, cluster: Cluster) -> None:
        head, far = cluster.head_node.node_id, cluster.far.node_id  # type: ignore[union-attr, attr-defined]
        gate = Gate.options(name="gate", resources={"far": 1}).remote()
        ref = tray.put(b"y" * 200_000)
        pid = tray.get(gate.keep.remote([ref]))
        (actor,) = state.list_actors(filters=[("name", "=", "gate")])
        assert actor["node_id"] == far and actor["pid"] == pid and actor["state"] == "ALIVE"
        nodes = {n["node_id"]: n for n in state.list_nodes()}
        assert nodes[head]["is_head_node"] and not nodes[far]["is_head_node"]
        assert {nodes[head]["state"], nodes[far]["state"]} == {"ALIVE"}
        (job,) = state.list_jobs(filters=[("status", "=", "RUNNING")])
        assert job["driver_info"]["pid"] == os.getpid()
        workers = state.list_workers(limit=None)
        assert {w["node_id"] for w in workers if w["worker_type"] == "WORKER"} == {head, far}
        assert any(w["pid"] == pid and w["node_id"] == far for w in workers)
        holders = {(o["type"], o["node_id"]) for o in state.get_objects(ref.hex())}
        assert ("WORKER", far) in holders and any(kind == "DRIVER" for kind, _node in holders)
        pg = placement_group([{"CPU": 1}], strategy="PACK")
        tray.get(pg.ready(), timeout=30)
        (row,) = state.list_placement_groups(filters=[("placement_group_id", "=", pg.id.hex())], detail=True)
        assert row["state"] == "CREATED" and row["strategy"] == "PACK" and row["bundles"] == [{"CPU": 1}]
        remove_placement_group(pg)
        wait_for_condition(lambda: state.get_placement_group(pg.id.hex())["state"] == "REMOVED", timeout=30)
        tray.kill(gate)
