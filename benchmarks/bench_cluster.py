"""A real cluster on loopback: tasks run on another node, and objects pulled between nodes.

    python benchmarks/bench_cluster.py [--rounds 5] [--quick]

Starts a head with no CPUs (so every task runs on another node) and two worker nodes of
2 CPUs each, connects this process as the driver, and measures, each beside the same
workload on a one-machine ``tray.init()`` measured in the same run:

- cross-node tasks/s: 1,000 tiny tasks submitted at once, then waited for (Ray's "tasks
  async"), and one at a time (Ray's "tasks sync");
- cross-node object transfer GB/s: a large array put by the driver (in the head's store)
  read by a task on a worker node, which pulls it over the data connection in chunks; and
  the same object read by a second task on that node (already there: no transfer).

Prints the median of each over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import tray
from tray.cluster_utils import Cluster
from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@tray.remote
def tiny() -> int:
    return 1


@tray.remote
def nbytes(a: Any) -> int:
    return int(a.nbytes)


def median(fn: Callable[[], float], rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


def tasks_async(n: int) -> float:
    t = time.perf_counter()
    tray.get([tiny.remote() for _ in range(n)])
    return n / (time.perf_counter() - t)


def tasks_sync(n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        tray.get(tiny.remote())
    return n / (time.perf_counter() - t)


def transfer(size: int, node_id: str) -> tuple[float, float]:
    """GB/s of a task on ``node_id`` reading a fresh object made by the driver: the first
    read pulls it to that node, the second finds it there."""
    ref = tray.put(np.ones(size // 8))
    on = NodeAffinitySchedulingStrategy(node_id, soft=False)
    tray.get(nbytes.options(scheduling_strategy=on).remote(np.zeros(1)))  # a warm worker there
    t = time.perf_counter()
    assert tray.get(nbytes.options(scheduling_strategy=on).remote(ref)) == size
    first = time.perf_counter() - t
    t = time.perf_counter()
    tray.get(nbytes.options(scheduling_strategy=on).remote(ref))
    second = time.perf_counter() - t
    del ref
    return size / first / 1e9, size / second / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a smoke run: small sizes, 2 rounds")
    args = p.parse_args()
    rounds = 2 if args.quick else args.rounds
    n_async, n_sync = (200, 50) if args.quick else (1000, 300)
    size = (64 if args.quick else 1024) * 2**20
    results: dict[str, tuple[float, float]] = {}

    tray.init(num_cpus=4)
    tasks_async(n_async)  # warm the workers up
    local = (median(lambda: tasks_async(n_async), rounds), median(lambda: tasks_sync(n_sync), rounds))
    tray.shutdown()

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 4 * size})
    try:
        node = cluster.add_node(num_cpus=2, object_store_memory=4 * size)
        cluster.add_node(num_cpus=2, object_store_memory=4 * size)
        tray.init(address=cluster.address)
        tasks_async(n_async)
        results["tasks async (per second)"] = (median(lambda: tasks_async(n_async), rounds), local[0])
        results["tasks sync (per second)"] = (median(lambda: tasks_sync(n_sync), rounds), local[1])
        pulls = [transfer(size, node.node_id) for _ in range(rounds)]
        results[f"object transfer, {size >> 20} MiB (GB/s)"] = (statistics.median(p[0] for p in pulls), float("nan"))
        results["same object again on that node (GB/s)"] = (statistics.median(p[1] for p in pulls), float("nan"))
    finally:
        cluster.shutdown()
    print(f"tray {tray.__version__}: a head without CPUs and 2 nodes of 2 CPUs on loopback, {rounds} rounds (medians)")
    print(f"{'benchmark':45} {'cluster':>12} {'one machine':>12}")
    for name, (value, base) in results.items():
        print(f"{name:45} {value:12,.2f} {base:12,.2f}")


if __name__ == "__main__":
    main()
