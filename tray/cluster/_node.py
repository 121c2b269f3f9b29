"""A node: the system actors of one machine, under one supervision tree.

    node supervisor (one_for_one)
    ├── object store manager
    ├── worker pool supervisor (simple_one_for_one: WorkerProcess)
    └── node scheduler

The store starts first and stops last, after every worker that could write to it is gone.
"""

from __future__ import annotations

import os
from typing import Any

from ..actors import ActorRef, ActorSystem
from ..exceptions import RayError
from ..store import DEFAULT_INLINE_LIMIT, STORE_NAME, ObjectStore
from ..supervisors import ChildSpec, Supervisor, SupervisorSpec
from ._pool import GRACE_S, WorkerProcess
from ._scheduler import POOL_NAME, SCHEDULER_NAME, NodeScheduler


def node_resources(num_cpus: float | None = None, num_gpus: float | None = None,
                   resources: dict[str, float] | None = None, memory: float | None = None,
                   object_store_memory: int | None = None) -> dict[str, float]:
    """This machine's resources, as Ray counts them, with the user's overrides."""
    total: dict[str, float] = {"CPU": float(os.cpu_count() or 1) if num_cpus is None else float(num_cpus)}
    total["GPU"] = float(num_gpus or 0)
    if memory is None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.7
    total["memory"] = float(memory)
    total["object_store_memory"] = float(object_store_memory or default_store_budget())
    total.update(resources or {})
    return {k: v for k, v in total.items() if v}


def shm_size() -> int:
    try:
        st = os.statvfs("/dev/shm")
        return st.f_blocks * st.f_frsize
    except OSError:
        return 0


def default_store_budget() -> int:
    """Ray's default object store size: 30% of memory, and not more than /dev/shm holds."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(min(0.3 * ram, 0.9 * (shm_size() or ram)))


class StoreConfig:
    """A node's object store: where its files go, its memory budget, the inline threshold."""

    def __init__(self, prefix: str, spill_dir: str, budget: int | None = None, own_spill_dir: bool = True,
                 inline_limit: int = DEFAULT_INLINE_LIMIT) -> None:
        if budget is None:
            budget = default_store_budget()
        if budget <= 0:
            raise ValueError(f"object_store_memory must be a positive number of bytes, got {budget}")
        self.prefix, self.spill_dir, self.budget = prefix, spill_dir, int(budget)
        self.own_spill_dir, self.inline_limit = own_spill_dir, inline_limit


class LocalNode:
    """Starts and stops a node's system actors in a given actor system."""

    def __init__(self, system: ActorSystem, resources: dict[str, float], worker_env: dict[str, str],
                 store: StoreConfig, log_to_driver: bool = True) -> None:
        self.system = system
        self.resources = resources
        self.worker_env = {**worker_env, "TRAY_STORE_PREFIX": store.prefix,
                           "TRAY_INLINE_LIMIT": str(store.inline_limit)}
        self.store = store
        self.log_to_driver = log_to_driver
        self.supervisor: ActorRef | None = None

    def spec(self) -> SupervisorSpec:
        assert self.system.address is not None, "a node's system must listen (workers connect to it)"
        worker = ChildSpec(
            id="worker",
            start=WorkerProcess,
            args=(self.system.address, self.worker_env, self.log_to_driver),
            restart="temporary",
            shutdown=3 * GRACE_S,
        )
        pool = SupervisorSpec(strategy="simple_one_for_one", children=[worker])
        prestart = int(min(self.resources.get("CPU", 1), 8))
        return SupervisorSpec(
            strategy="one_for_one",
            intensity=3,
            period=5.0,
            children=[
                ChildSpec(id="store", start=ObjectStore, name=STORE_NAME, max_concurrency=1 << 20,
                          args=(self.store.prefix, self.store.budget, self.store.spill_dir, self.store.own_spill_dir),
                          decider={Exception: "resume"}),  # its errors are its callers' (full, lost)
                ChildSpec(id="worker_pool", start=pool, name=POOL_NAME),
                # A bad request (unschedulable shape, a taken name, a dead asker) is the caller's error, not the scheduler's.
                ChildSpec(id="scheduler", start=NodeScheduler, args=(self.resources, prestart), name=SCHEDULER_NAME,
                          max_concurrency=1 << 20,
                          decider={RayError: "resume", ValueError: "resume", KeyError: "resume"}),
            ],
        )

    async def start(self) -> ActorRef:
        self.supervisor = await self.system.spawn(Supervisor, self.spec(), name="tray.node")
        scheduler = self.system.lookup(SCHEDULER_NAME)
        assert scheduler is not None
        return scheduler

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.system.stop(self.supervisor, "shutdown")

    def describe(self) -> Any:
        return {"resources": self.resources, "address": self.system.address}
