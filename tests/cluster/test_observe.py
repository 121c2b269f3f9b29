"""Seeing what runs on a real two-node cluster: errors name the node (and ip) they came
from, unschedulable tasks fail at once, ``tray logs`` reads another node's files through
its scheduler, and ``tray.timeline`` gathers every node's workers."""

from __future__ import annotations

import os
import sys
import time

import pytest

import tray
from tray._cli import main
from tray.cluster_utils import Cluster
from tray.exceptions import TaskUnschedulableError, WorkerCrashedError
from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.other = c.add_node(num_cpus=1)
    tray.init(address=c.address)
    yield c
    c.shutdown()


def on(node) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)


@tray.remote(max_retries=0)
def fail_loudly(how: str) -> None:
    print("about to go", file=sys.stderr, flush=True)
    if how == "raise":
        raise ValueError("remote trouble")
    os._exit(5)


@tray.remote
def shout(text: str) -> int:
    print(text, flush=True)
    return os.getpid()


def test_an_unschedulable_task_fails_within_a_second_on_a_cluster(cluster):
    start = time.monotonic()
    with pytest.raises(TaskUnschedulableError, match="nope"):
        tray.get(shout.options(resources={"nope": 1}).remote("x"), timeout=10)
    assert time.monotonic() - start < 1.0


def test_errors_name_the_node_and_ip_they_came_from(cluster):
    node = cluster.other.node_id
    with pytest.raises(ValueError) as info:
        tray.get(fail_loudly.options(scheduling_strategy=on(cluster.other)).remote("raise"), timeout=60)
    assert "task fail_loudly (pid=" in str(info.value) and f"ip=127.0.0.1, node={node})" in str(info.value)
    with pytest.raises(WorkerCrashedError) as info:
        tray.get(fail_loudly.options(scheduling_strategy=on(cluster.other)).remote("exit"), timeout=60)
    text = str(info.value)
    assert f"exited with code 5 on node {node}" in text
    assert text.splitlines()[-1].endswith(", ip=127.0.0.1) about to go")


def test_logs_of_another_node_come_through_its_scheduler(cluster, capsys):
    node = cluster.other.node_id
    ref = shout.options(scheduling_strategy=on(cluster.other)).remote("far away")
    pid = tray.get(ref, timeout=60)
    line = f"(shout pid={pid}, ip=127.0.0.1) far away"
    deadline = time.monotonic() + 10
    while True:  # until the node has copied the line into its file
        assert main(["logs", "--task", ref.hex(), "--address", cluster.address]) == 0
        out = capsys.readouterr().out
        if line in out or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert line in out
    assert main(["logs", "--node", node, "--address", cluster.address]) == 0
    assert line in capsys.readouterr().out
    assert main(["logs", "--address", cluster.address]) == 0
    listing = capsys.readouterr().out
    assert any(row.startswith(node) and f"-{pid}.out" in row for row in listing.splitlines())


def test_timeline_gathers_every_nodes_workers(cluster):
    refs = [shout.options(scheduling_strategy=on(n)).remote("t") for n in (cluster.head_node, cluster.other)]
    tray.get(refs, timeout=60)
    events = tray.timeline()
    nodes = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert {f"node {cluster.head_node.node_id}", f"node {cluster.other.node_id}"} <= nodes
    spans = {e["args"]["task_id"]: e for e in events if e["ph"] == "X"}
    assert {spans[r.hex()]["args"]["node_id"] for r in refs} == {cluster.head_node.node_id, cluster.other.node_id}
    assert len({spans[r.hex()]["pid"] for r in refs}) == 2  # one trace process per node
