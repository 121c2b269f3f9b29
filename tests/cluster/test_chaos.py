"""Chaos: work keeps flowing, and nothing is lost, while a monkey kills worker processes.

Each test is bounded in time and stops its monkey itself; the suite's leak check then makes
sure no process or shared-memory file outlived it.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil
import pytest

import tray
from tray.cluster_utils import Cluster


def workers_of(cluster: Cluster) -> list[psutil.Process]:
    """The cluster's worker processes (not the node processes themselves, nor the zygotes
    that fork the workers)."""
    found = []
    for node in cluster.list_all_nodes():
        try:
            found += [p for p in psutil.Process(node.pid).children(recursive=True)
                      if p.is_running() and not _is_zygote(p)]
        except psutil.NoSuchProcess:
            pass
    return found


def _is_zygote(p: psutil.Process) -> bool:
    try:
        cmdline = " ".join(p.cmdline())
    except psutil.Error:
        return False
    return "tray::zygote" in cmdline or "--zygote" in cmdline  # its title, or its command line until it sets one


@contextmanager
def monkey(pick: Callable[[], list[psutil.Process]], every: float, seed: int) -> Iterator[list[int]]:
    """Kill (SIGKILL) one of ``pick()`` every ``every`` seconds until the block ends."""
    rng = random.Random(seed)
    killed: list[int] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            victims = pick()
            if victims:
                victim = rng.choice(victims)
                try:
                    victim.send_signal(signal.SIGKILL)
                    killed.append(victim.pid)
                except psutil.NoSuchProcess:
                    pass

    thread = threading.Thread(target=run, name="monkey", daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=2)
    c.add_node(num_cpus=2)
    tray.init(address=c.address)
    yield c
    c.shutdown()


@tray.remote(max_retries=-1)
def square(i: int) -> int:
    return i * i


def test_ten_thousand_tasks_while_workers_are_killed_every_200ms(cluster):
    seed = random.randrange(1 << 30)
    n = 10_000
    t = time.monotonic()
    with monkey(lambda: workers_of(cluster), 0.2, seed) as killed:
        refs = [square.remote(i) for i in range(n)]
        results = tray.get(refs, timeout=300)
    elapsed = time.monotonic() - t
    assert results == [i * i for i in range(n)], f"seed {seed}"
    assert len(killed) >= 5, f"the monkey killed only {len(killed)} workers in {elapsed:.1f} s"
    print(f"\n{n} tasks, {len(killed)} workers killed, {elapsed:.1f} s (seed {seed})")


@tray.remote(max_restarts=-1, max_task_retries=-1)
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n

    def pid(self) -> int:
        import os

        return os.getpid()


def test_an_actor_killed_over_and_over_answers_every_call(cluster):
    seed = random.randrange(1 << 30)
    counter = Counter.remote()
    tray.get(counter.pid.remote(), timeout=60)

    def the_actor() -> list[psutil.Process]:
        return [p for p in workers_of(cluster) if p.name() == "tray::Counter"]

    replies = []
    with monkey(the_actor, 0.2, seed) as killed:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            replies += tray.get([counter.incr.remote() for _ in range(20)], timeout=120)
    assert len(killed) >= 3, f"the monkey killed the actor only {len(killed)} times"
    assert all(isinstance(r, int) and r >= 1 for r in replies), f"seed {seed}"
    assert len(replies) % 20 == 0 and replies
    assert tray.get(counter.incr.remote(), timeout=60) >= 1  # alive after the storm
    print(f"\n{len(replies)} calls answered, the actor was killed {len(killed)} times (seed {seed})")


@tray.remote(max_retries=3)
def chunk(i: int):
    import numpy as np

    time.sleep(0.02)
    return np.full(1 << 17, i, dtype=np.int64)  # 1 MiB: kept in the store of the node that made it


@tray.remote(max_retries=3)
def add(a, b) -> int:
    return int(a.sum() + b.sum())


def test_a_node_killed_mid_job_loses_nothing(cluster):
    """A map and reduce job while a worker node is SIGKILLed: the maps it ran are run again
    elsewhere (lineage), the tasks it was running finish elsewhere, the answer is exact."""
    victim = cluster.worker_nodes[1]
    maps = [chunk.options(scheduling_strategy="SPREAD").remote(i) for i in range(60)]
    tray.wait(maps, num_returns=60, timeout=60, fetch_local=False)  # a third of them live on the victim
    sums = [add.remote(maps[i], maps[i + 1]) for i in range(0, 60, 2)]
    victim.kill()  # while the sums start
    assert sum(tray.get(sums, timeout=120)) == sum(range(60)) * (1 << 17)
