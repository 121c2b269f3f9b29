"""A real three-node cluster on loopback: each node its own process, with its own workers.

The head has 1 CPU; node ``a`` 2 CPUs; node ``b`` 2 CPUs and a custom resource ``gpu_box``.
One driver (this pytest process) is connected for the whole module.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import tray
from tray.cluster_utils import Cluster
from tray.exceptions import TaskUnschedulableError
from tray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.a = c.add_node(num_cpus=2)
    c.b = c.add_node(num_cpus=2, resources={"gpu_box": 1})
    tray.init(address=c.address)
    yield c
    c.shutdown()


@tray.remote
def node_of(sleep: float = 0.0) -> str:
    time.sleep(sleep)
    return tray.get_runtime_context().get_node_id()


@tray.remote
class Where:
    def node(self) -> str:
        return tray.get_runtime_context().get_node_id()

    def echo(self, x):
        return x


def test_nodes_and_cluster_resources_cover_every_node(cluster):
    rows = {n["NodeID"]: n for n in tray.nodes()}
    ids = {cluster.head_node.node_id, cluster.a.node_id, cluster.b.node_id}
    assert ids <= set(rows)
    assert all(rows[i]["Alive"] for i in ids)
    assert rows[cluster.head_node.node_id]["IsHead"]
    total = tray.cluster_resources()
    assert total["CPU"] == 5 and total["gpu_box"] == 1


@tray.remote
def node_at_gate(gate: str, n: int) -> tuple[str, bool]:
    """Check in (a file in ``gate``) and wait until ``n`` tasks have: they can only all
    arrive if they run at once. Files, not an actor: a task waiting in tray.get lends its CPU."""
    open(os.path.join(gate, f"{os.getpid()}-{time.monotonic_ns()}"), "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(gate)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return tray.get_runtime_context().get_node_id(), len(os.listdir(gate)) >= n


def test_tasks_spread_over_the_nodes_when_one_is_full(cluster, tmp_path):
    """5 one-CPU tasks that must run at once fill the cluster's 5 CPUs: the head's one CPU is
    full, so they spill to the other nodes."""
    results = tray.get([node_at_gate.remote(str(tmp_path), 5) for _ in range(5)], timeout=120)
    nodes, all_in = zip(*results, strict=True)
    assert all(all_in)  # they ran at once
    assert set(nodes) == {cluster.head_node.node_id, cluster.a.node_id, cluster.b.node_id}


def test_spread_strategy_uses_every_node(cluster):
    nodes = tray.get([node_of.options(scheduling_strategy="SPREAD").remote() for _ in range(9)], timeout=60)
    assert set(nodes) == {cluster.head_node.node_id, cluster.a.node_id, cluster.b.node_id}


def test_custom_resource_routes_an_actor_to_its_node(cluster):
    actor = Where.options(resources={"gpu_box": 1}).remote()
    assert tray.get(actor.node.remote(), timeout=60) == cluster.b.node_id
    tray.kill(actor)


def test_node_affinity_hard_and_soft(cluster):
    hard = NodeAffinitySchedulingStrategy(cluster.a.node_id, soft=False)
    assert set(tray.get([node_of.options(scheduling_strategy=hard).remote() for _ in range(4)], timeout=60)) == \
        {cluster.a.node_id}
    gone = NodeAffinitySchedulingStrategy("0" * 8, soft=False)
    with pytest.raises(TaskUnschedulableError, match="not alive"):
        tray.get(node_of.options(scheduling_strategy=gone).remote(), timeout=60)
    soft = NodeAffinitySchedulingStrategy("0" * 8, soft=True)
    assert tray.get(node_of.options(scheduling_strategy=soft).remote(), timeout=60)


def test_a_task_no_node_can_run_fails_at_once_naming_the_resource(cluster):
    t = time.monotonic()
    with pytest.raises(TaskUnschedulableError, match="gpu_box"):
        tray.get(node_of.options(resources={"gpu_box": 2}).remote(), timeout=60)
    assert time.monotonic() - t < 5


def test_an_object_made_on_one_node_is_read_on_another(cluster):
    on_b = Where.options(resources={"gpu_box": 1}).remote()
    hard_a = NodeAffinitySchedulingStrategy(cluster.a.node_id, soft=False)

    @tray.remote
    def total(x):
        return float(x.sum()), tray.get_runtime_context().get_node_id()

    big = on_b.echo.remote(np.arange(1 << 20, dtype=np.float64))  # 8 MiB: stored on node b
    s, where = tray.get(total.options(scheduling_strategy=hard_a).remote(big), timeout=60)
    assert where == cluster.a.node_id and s == float(np.arange(1 << 20, dtype=np.float64).sum())
    here = tray.get(big, timeout=60)  # and on the head, where the driver is
    assert here[-1] == (1 << 20) - 1
    tray.kill(on_b)


def test_placement_groups_reserve_and_route(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert tray.get(pg.ready(), timeout=60) is not None
    row = placement_group_table(pg)
    assert row["state"] == "CREATED"
    nodes = row["bundles_to_node_id"]  # Ray's shape: {bundle index: node id}
    assert len(set(nodes.values())) == 2
    for index, node in nodes.items():
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index)
        assert tray.get(node_of.options(scheduling_strategy=strategy).remote(), timeout=60) == node
    before = tray.available_resources()["CPU"]
    remove_placement_group(pg)
    deadline = time.monotonic() + 10
    while tray.available_resources()["CPU"] < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tray.available_resources()["CPU"] == before + 2


def test_a_placement_group_that_cannot_fit_stays_pending(cluster):
    pg = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")  # 3 nodes only
    assert not pg.wait(1)
    assert placement_group_table(pg)["state"] == "PENDING"
    remove_placement_group(pg)


def test_detached_named_actor_is_found_from_another_job(cluster, tmp_path):
    Where.options(name="keeper", lifetime="detached", resources={"gpu_box": 1}).remote()
    assert tray.get(tray.get_actor("keeper").node.remote(), timeout=60) == cluster.b.node_id
    ns = tray.get_runtime_context().namespace
    script = tmp_path / "other.py"
    script.write_text(
        "import tray\n"
        f"tray.init(address={cluster.address!r}, namespace={ns!r})\n"
        "print(tray.get(tray.get_actor('keeper').echo.remote(41)) + 1)\n"
        "tray.kill(tray.get_actor('keeper'))\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("42")


def test_prints_of_remote_workers_reach_the_driver(cluster, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(
        "import tray\n"
        "from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as A\n"
        f"tray.init(address={cluster.address!r})\n"
        "@tray.remote\n"
        "def hello():\n"
        "    print('hello from a node')\n"
        f"tray.get(hello.options(scheduling_strategy=A({cluster.a.node_id!r}, soft=False)).remote())\n"
        "import time; time.sleep(0.5)\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "hello from a node" in out.stdout
    line = next(line for line in out.stdout.splitlines() if "hello from a node" in line)
    assert line.startswith("(hello pid=") and "ip=127.0.0.1)" in line


def test_each_job_runs_in_its_own_workers_with_its_own_import_path(cluster, tmp_path):
    @tray.remote
    def pid() -> int:
        time.sleep(0.05)
        return os.getpid()

    mine = set(tray.get([pid.remote() for _ in range(10)], timeout=60))
    (tmp_path / "jobmod.py").write_text("import os\ndef work(x):\n    return x + 1, os.getpid()\n")
    script = tmp_path / "job.py"
    script.write_text(
        "import tray, jobmod\n"  # jobmod is importable only from the script's directory
        f"tray.init(address={cluster.address!r})\n"
        "f = tray.remote(jobmod.work)\n"
        "out = tray.get([f.options(scheduling_strategy='SPREAD').remote(i) for i in range(10)])\n"
        "print([v for v, _ in out] == list(range(1, 11)), *sorted({p for _, p in out}))\n"
    )
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    ok, *theirs = r.stdout.split()
    assert ok == "True"
    assert not mine & {int(p) for p in theirs}
