"""A node: the system actors of one machine, under one supervision tree.

    node supervisor (one_for_one)
    ├── zygote                   (forks the default workers: tray.core._forkserver)
    ├── control store            (head node only)
    ├── object store manager
    ├── worker pool supervisor   (simple_one_for_one: WorkerProcess)
    ├── node scheduler
    ├── memory monitor           (unless memory_monitor_refresh_ms is 0)
    ├── head link supervisor     (one_for_one: HeadLink, restarted with backoff)
    ├── dashboard                (head node, include_dashboard: started from a string)
    └── metrics exporter         (the node's own Prometheus port: started from a string)

The store starts before and stops after every worker that could write to it. The head
link registers the node with the control store (local on the head, remote elsewhere)
and crashes when the head is lost; its supervisor restarting it, with backoff, *is* the
reconnection — nothing reconnects behind the tree's back.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from ..actors import Actor, ActorRef, ActorSystem
from ..exceptions import NodeDeclaredDead, RayError
from ..store import DEFAULT_INLINE_LIMIT, STORE_NAME, ObjectStore
from ..supervisors import Backoff, ChildSpec, Supervisor, SupervisorSpec
from ._control import CONTROL_NAME, ControlStore
from ._labels import NODE_ID_LABEL, check_node_labels
from ._logs import log_dir_of
from ._memory import MEMORY_MONITOR_NAME, MemoryConfig, MemoryMonitor
from ._pool import GRACE_S, WorkerProcess, default_worker_env
from ._scheduler import POOL_NAME, SCHEDULER_NAME, NodeScheduler
from ._zygote import ZYGOTE_NAME, Zygote
from ._zygote import available as zygote_available

log = logging.getLogger("tray.cluster")

DASHBOARD = "tray.dashboard._head:DashboardProcess"  # a library: named, never imported here
LOOPBACK = "127.0.0.1"  # a node's address unless it is given one
HEAD_RESOURCE = "node:__internal_head__"  # Ray's resource of the head node
DASHBOARD_NAME = "tray.dashboard"
DASHBOARD_EXTRA = ("starlette", "hypercorn", "httpx", "prometheus_client")  # tray[default]
DASHBOARD_URL_KEY = ("_tray", "dashboard_url")  # (namespace, key) in the control store's KV table
NODE_METRICS = "tray.dashboard._node_metrics:NodeMetrics"  # every node's metrics port (a library's)
NODE_METRICS_NAME = "tray.metrics"


def dashboard_available() -> bool:
    """Are the dashboard's packages (the ``default`` extra) installed? (Ray's include_dashboard default.)"""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in DASHBOARD_EXTRA)


def node_resources(num_cpus: float | None = None, num_gpus: float | None = None,
                   resources: dict[str, float] | None = None, memory: float | None = None,
                   object_store_memory: int | None = None, ip: str = LOOPBACK, head: bool = False) -> dict[str, float]:
    """This machine's resources, as Ray counts them, with the user's overrides; Ray's
    ``node:<ip>`` (and on the head ``node:__internal_head__``), 1 each, so a task can ask
    for a node by its address (``resources={"node:10.0.0.2": 0.01}``)."""
    for key in ("CPU", "GPU"):
        if resources and key in resources:
            raise ValueError(f"use num_{key.lower()}s=..., not resources={{{key!r}: ...}}")
    total: dict[str, float] = {"CPU": float(os.cpu_count() or 1) if num_cpus is None else float(num_cpus)}
    total["GPU"] = float(num_gpus or 0)
    if memory is None:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.7
    total["memory"] = float(memory)
    total["object_store_memory"] = float(object_store_memory or default_store_budget())
    total[f"node:{ip}"] = 1.0
    if head:
        total[HEAD_RESOURCE] = 1.0
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


class HeadLink(Actor):
    """This node's membership: registers it with the control store and watches the head.

    It crashes when the head is unreachable or lost; restarting it registers the node
    again (with the actors it still runs, so a restarted head finds them).
    """

    def __init__(self, head_address: str | None, info: dict[str, Any]) -> None:
        self.head_address = head_address  # None: the control store is in this system
        self.info = info

    async def on_start(self) -> None:
        self.start_soon(self._link)

    async def _link(self) -> None:
        system = self.system
        if self.head_address is None:
            control = system.lookup(CONTROL_NAME)
        else:
            control = await system.lookup_remote(self.head_address, CONTROL_NAME)
        if control is None:
            raise ConnectionError(f"no control store answers at {self.head_address}")
        scheduler, store = system.lookup(SCHEDULER_NAME), system.lookup(STORE_NAME)
        assert scheduler is not None and store is not None
        hosted = await scheduler.hosted.ask()
        try:
            view = await control.register_node.ask(self.info, scheduler, store, hosted)
        except NodeDeclaredDead as exc:  # it stalled past the timeout; its work moved on without it
            log.error("the head will not take this node back: %s; stopping the node", exc)
            os.kill(os.getpid(), signal.SIGTERM)  # the node's process stops as on `tray stop`
            return
        self.monitor(control)
        await scheduler.joined.tell(control, view)

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        raise ConnectionError(f"lost the head node's control store ({reason})")


class LocalNode:
    """Starts and stops a node's system actors in a given actor system.

    ``head``: this node hosts the control store (``storage`` persists it); otherwise it
    joins the one at ``head_address``. ``echo_output``: workers' output goes to this
    process's terminal (a driver hosting its own node); otherwise to files in
    ``log_dir`` and to the driver of each worker's job. ``memory``: the memory monitor's
    settings (default: from the ``TRAY_*`` environment).
    """

    def __init__(self, system: ActorSystem, resources: dict[str, float], worker_env: dict[str, str],
                 store: StoreConfig, log_to_driver: bool = True, *, head: bool = True,
                 head_address: str | None = None, storage: Any = None, info: dict[str, Any] | None = None,
                 echo_output: bool = True, log_dir: str | None = None, node_grace_s: float = 30.0,
                 memory: MemoryConfig | None = None, dashboard: dict[str, Any] | None = None,
                 metrics: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> None:
        self.system = system
        self.resources = resources
        self.node_id = system.uid
        self.worker_env = worker_env  # workers learn the rest (store, node id) from the scheduler's node_info
        self.store = store
        self.log_to_driver = log_to_driver
        self.head, self.head_address, self.storage = head, head_address, storage
        self.echo_output, self.log_dir, self.node_grace_s = echo_output, log_dir, node_grace_s
        self.memory = memory if memory is not None else MemoryConfig.resolve()
        self.info = {"node_id": self.node_id, "address": system.address, "resources": resources, "head": head,
                     "pid": os.getpid(), "hostname": os.uname().nodename, "store_prefix": store.prefix,
                     "inline_limit": store.inline_limit, **(info or {}),
                     # Ray's default label first; custom ones are checked (no ray.io/ keys)
                     "labels": {NODE_ID_LABEL: self.node_id, **check_node_labels(labels)}}
        self.supervisor: ActorRef | None = None
        self.dashboard = dashboard if head else None  # {"host", "port"}: the head serves the dashboard
        self.dashboard_url: str | None = None
        self.metrics = metrics  # {"host", "port"}: this node's own Prometheus port
        self.metrics_url: str | None = None

    def spec(self) -> SupervisorSpec:
        assert self.system.address is not None, "a node's system must listen (workers connect to it)"
        worker = ChildSpec(
            id="worker",
            start=WorkerProcess,
            args=(self.system.address, self.worker_env, self.echo_output and self.log_to_driver, self.log_dir),
            restart="temporary",
            shutdown=3 * GRACE_S,
        )
        pool = SupervisorSpec(strategy="simple_one_for_one", children=[worker])
        link = SupervisorSpec(strategy="one_for_one", intensity=1000, period=1.0, children=[
            ChildSpec(id="head_link", start=HeadLink, args=(None if self.head else self.head_address, self.info),
                      backoff=Backoff(min=0.1, max=2.0, jitter=0.2))])
        prestart = int(min(self.resources.get("CPU", 1), 8))
        children = [
            ChildSpec(id="store", start=ObjectStore, name=STORE_NAME, max_concurrency=1 << 20,
                      args=(self.store.prefix, self.store.budget, self.store.spill_dir, self.store.own_spill_dir),
                      decider={Exception: "resume"}),  # its errors are its callers' (full, lost)
            ChildSpec(id="worker_pool", start=pool, name=POOL_NAME),
            # A bad request (unschedulable shape, a dead asker) is the caller's error, not the scheduler's.
            ChildSpec(id="scheduler", start=NodeScheduler, name=SCHEDULER_NAME, max_concurrency=1 << 20,
                      args=(self.resources, prestart, self.info, self.echo_output),
                      decider={RayError: "resume", ValueError: "resume", KeyError: "resume"}),
            ChildSpec(id="head_link", start=link),
        ]
        if self.memory.refresh_ms > 0:  # after the scheduler, whose workers it kills
            children.insert(-1, ChildSpec(id="memory_monitor", start=MemoryMonitor, name=MEMORY_MONITOR_NAME,
                                          args=(self.memory,)))
        if self.head:
            children.insert(0, ChildSpec(id="control", start=ControlStore, name=CONTROL_NAME,
                                         max_concurrency=1 << 20, args=(self.storage, self.node_grace_s),
                                         decider={RayError: "resume", ValueError: "resume", KeyError: "resume"}))
        # First: its imports run while the rest starts; last to stop, after the workers it forked.
        # Not restarted: without it, workers start as their own interpreters.
        if zygote_available():
            children.insert(0, ChildSpec(id="zygote", start=Zygote, name=ZYGOTE_NAME, max_concurrency=1 << 16,
                                         args=(default_worker_env(self.worker_env),), restart="temporary",
                                         shutdown=3 * GRACE_S))
        if self.dashboard is not None:
            log_dir = self.log_dir or log_dir_of(self.info)
            children.append(ChildSpec(id="dashboard", start=DASHBOARD, name=DASHBOARD_NAME, args=(
                self.system.address, self.worker_env, os.path.dirname(log_dir) if log_dir else None,
                self.dashboard.get("host") or "127.0.0.1", self.dashboard.get("port"))))
        if self.metrics is not None:
            children.append(ChildSpec(id="metrics", start=NODE_METRICS, name=NODE_METRICS_NAME,
                                      args=(self.metrics.get("host") or "127.0.0.1", self.metrics.get("port") or 0)))
        return SupervisorSpec(strategy="one_for_one", intensity=3, period=5.0, children=children)

    async def start(self) -> ActorRef:
        self.supervisor = await self.system.spawn(Supervisor, self.spec(), name="tray.node")
        scheduler = self.system.lookup(SCHEDULER_NAME)
        assert scheduler is not None
        exporter = self.system.lookup(NODE_METRICS_NAME) if self.metrics is not None else None
        if exporter is not None:
            self.metrics_url = await exporter.get_url.ask()
        dashboard = self.system.lookup(DASHBOARD_NAME) if self.dashboard is not None else None
        if dashboard is not None:
            self.dashboard_url = await dashboard.get_url.ask()
            control = self.system.lookup(CONTROL_NAME)
            assert control is not None
            await control.kv_put.ask(*DASHBOARD_URL_KEY, self.dashboard_url.encode(), True)
        return scheduler

    async def stop(self) -> None:
        if self.supervisor is not None:
            await self.system.stop(self.supervisor, "shutdown")
