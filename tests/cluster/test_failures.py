"""Nodes that die, go silent, or come back: each test builds its own real cluster."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import tray
from tray.cluster_utils import Cluster
from tray.experimental.internal_kv import _internal_kv_get, _internal_kv_put
from tray.testing import wait_for_condition


def alive(node_id: str) -> bool:
    return next(n["Alive"] for n in tray.nodes() if n["NodeID"] == node_id)


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_timeout": 2})
    yield c
    c.shutdown()


@tray.remote(max_retries=3)
def slow_node(seconds: float) -> str:
    time.sleep(seconds)
    return tray.get_runtime_context().get_node_id()


@tray.remote(max_restarts=1, max_task_retries=-1)
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n, tray.get_runtime_context().get_node_id()


def test_a_killed_node_is_declared_dead_and_its_tasks_and_actors_move(cluster):
    from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    a = cluster.add_node(num_cpus=2, node_timeout=2)
    b = cluster.add_node(num_cpus=2, node_timeout=2)
    tray.init(address=cluster.address)
    on_b = NodeAffinitySchedulingStrategy(b.node_id, soft=True)
    counter = Counter.options(scheduling_strategy=on_b).remote()
    assert tray.get(counter.incr.remote(), timeout=60) == (1, b.node_id)
    refs = [slow_node.options(scheduling_strategy=on_b).remote(2.0) for _ in range(2)]
    time.sleep(0.5)  # they run on b now
    t = time.monotonic()
    b.kill()
    wait_for_condition(lambda: not alive(b.node_id), timeout=10)
    declared = time.monotonic() - t
    assert declared < 3
    nodes = tray.get(refs, timeout=60)  # retried on the nodes that are left
    assert set(nodes) <= {cluster.head_node.node_id, a.node_id}
    n, where = tray.get(counter.incr.remote(), timeout=60)  # restarted elsewhere: __init__ ran again
    assert (n, where != b.node_id) == (1, True)
    row = next(n for n in tray.nodes() if n["NodeID"] == b.node_id)
    assert row["State"] == "DEAD" and row["DeathReason"]
    assert tray.cluster_resources()["CPU"] == 3
    status = subprocess.run([sys.executable, "-m", "tray", "status", "--address", cluster.address],
                            env={**os.environ, "TRAY_CLUSTER_TOKEN": cluster.token}, capture_output=True,
                            text=True, timeout=60)
    assert "2 alive, 1 dead" in status.stdout and "DEAD" in status.stdout, status.stdout + status.stderr


def test_a_silent_node_is_declared_dead_within_the_timeout(cluster):
    b = cluster.add_node(num_cpus=1, node_timeout=2)
    tray.init(address=cluster.address)
    os.kill(b.pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        wait_for_condition(lambda: not alive(b.node_id), timeout=15)
        assert time.monotonic() - t < 6  # a 2 s timeout, heartbeats every 0.5 s
    finally:
        os.kill(b.pid, signal.SIGCONT)
    assert "heartbeat" in next(n for n in tray.nodes() if n["NodeID"] == b.node_id)["DeathReason"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@tray.remote
class Keeper:
    def __init__(self):
        self.items = []

    def add(self, x):
        self.items.append(x)
        return list(self.items)


def _redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed here (CI installs it)")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("redis-server did not start")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}", proc


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_restarted_head_recovers_the_cluster_metadata(tmp_path, backend):
    redis = None
    if backend == "sqlite":
        storage = f"sqlite:///{tmp_path}/control.db"
    else:
        storage, redis = _redis_url(tmp_path)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "storage": storage})
    try:
        a = cluster.add_node(num_cpus=1, resources={"a_box": 1})
        tray.init(address=cluster.address, namespace="svc")
        keeper = Keeper.options(name="keeper", lifetime="detached", resources={"a_box": 1}).remote()
        assert tray.get(keeper.add.remote(1), timeout=60) == [1]
        _internal_kv_put("config", b"v1")
        tray.shutdown()

        cluster.restart_head()  # SIGKILL, then a new head process on the same port and storage
        tray.init(address=cluster.address, namespace="svc")
        wait_for_condition(lambda: any(n["NodeID"] == a.node_id and n["Alive"] for n in tray.nodes()),
                           timeout=30)  # node a registers with the new head
        assert _internal_kv_get("config") == b"v1"
        found = tray.get_actor("keeper")
        assert tray.get(found.add.remote(2), timeout=60) == [1, 2]  # the same process: its state is intact
        tray.kill(found)
    finally:
        cluster.shutdown()
        if redis is not None:
            redis.kill()
            redis.wait()


@tray.remote(max_retries=2)
def block(i: int):
    import numpy as np

    return np.full(1 << 18, i, dtype=np.int64)  # 2 MiB: stored on the node that made it


@tray.remote
def total(a) -> int:
    return int(a.sum())


def test_objects_lost_with_their_node_are_made_again_from_lineage(cluster):
    from tray.exceptions import OwnerDiedError
    from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    a = cluster.add_node(num_cpus=2, node_timeout=2)
    b = cluster.add_node(num_cpus=2, node_timeout=2)
    tray.init(address=cluster.address)
    on_b = NodeAffinitySchedulingStrategy(b.node_id, soft=True)
    refs = [block.options(scheduling_strategy=on_b).remote(i) for i in range(6)]
    ready, _ = tray.wait(refs, num_returns=len(refs), timeout=60, fetch_local=False)
    assert len(ready) == 6
    put_on_b = tray.get(_put_on.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        b.node_id, soft=False)).remote())  # a tray.put made by a worker of b: its owner dies with b
    b.kill()
    wait_for_condition(lambda: not alive(b.node_id), timeout=10)
    # a task on another node reads two of them; the driver reads them all
    on_a = NodeAffinitySchedulingStrategy(a.node_id, soft=False)
    assert tray.get(total.options(scheduling_strategy=on_a).remote(refs[0]), timeout=60) == 0
    values = tray.get(refs, timeout=60)
    assert [int(v[0]) for v in values] == list(range(6)) and all(v.shape == (1 << 18,) for v in values)
    with pytest.raises(OwnerDiedError):  # its owner died with node b
        tray.get(put_on_b[0], timeout=60)


@tray.remote
def _put_on():
    import numpy as np

    return [tray.put(np.ones(1 << 18))]


@tray.remote
def running(marker: str, seconds: float) -> None:
    open(marker, "w").close()
    time.sleep(seconds)


def test_a_driver_whose_node_died_gets_a_clear_error(cluster, tmp_path):
    from tray.exceptions import NodeDiedError

    tray.init(address=cluster.address)
    marker = tmp_path / "running"
    ref = running.remote(str(marker), 30.0)  # on the head: the only node, the driver's
    wait_for_condition(marker.exists, timeout=30)
    cluster.head_node.kill()
    t = time.monotonic()
    with pytest.raises(NodeDiedError, match="node .* is gone"):
        tray.get(ref, timeout=30)  # its worker died with the node; the retry finds no node
    with pytest.raises(NodeDiedError):
        tray.get(slow_node.remote(0.0), timeout=30)
    assert time.monotonic() - t < 10
