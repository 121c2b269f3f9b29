"""The control store: the cluster's metadata, on the head node (Ray's GCS).

It holds the nodes and their health, the actors (names, namespaces, detached lifetime,
where each runs), the jobs, the placement groups and a key-value table, and persists
them through a :class:`tray.store.Storage` (SQLite by default, Redis when configured),
so a restarted head recovers them: nodes and their actors come back as their nodes
register again; those that do not within ``node_grace_s`` are declared dead.

Liveness is the transport's: the store monitors each node's scheduler, each job's
driver and each actor's owner; a connection that closes or misses its heartbeats
becomes a ``Down``, and the node (job, owner) is dead. Node schedulers report their
free resources here; the store pushes the cluster's view back to every scheduler
(coalesced), which is what spillback decisions are made from.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections import deque
from typing import Any

import trio

from ..actors import Actor, ActorRef
from ..exceptions import NodeDeclaredDead, RayError
from ._labels import matches, parse_selector
from ._placement import feasible_ever, place
from ._resources import from_units, to_units

log = logging.getLogger("tray.cluster")

CONTROL_NAME = "tray.control"
VIEW_DELAY_S = 0.02  # resource reports are pushed to the schedulers at most this often
MAX_DEAD_ACTORS = 10_000  # dead actors kept for tray.util.state (Ray keeps its own number of them)
ALIVE, DEAD = "ALIVE", "DEAD"


class _Node:
    __slots__ = ("node_id", "info", "scheduler", "store", "total", "available", "state", "death", "started", "ended")

    def __init__(self, node_id: str, info: dict[str, Any]) -> None:
        self.node_id, self.info = node_id, info
        self.scheduler: ActorRef | None = None
        self.store: ActorRef | None = None
        self.total: dict[str, int] = to_units(info.get("resources", {}))
        self.available = dict(self.total)
        self.state = ALIVE
        self.death: str | None = None
        self.started = info.get("started", time.time())
        self.ended: float | None = None

    def row(self) -> dict[str, Any]:
        """Ray's ``ray.nodes()`` row."""
        info = self.info
        return {
            "NodeID": self.node_id, "Alive": self.state == ALIVE, "State": self.state,
            "NodeManagerAddress": info.get("ip", "127.0.0.1"), "NodeManagerHostname": info.get("hostname", ""),
            "NodeManagerPort": info.get("port", 0), "Address": info.get("address"),
            "Resources": from_units(self.total) if self.state == ALIVE else {},
            "Available": from_units(self.available) if self.state == ALIVE else {},
            "IsHead": bool(info.get("head")), "Pid": info.get("pid"), "SessionDir": info.get("session_dir"),
            "StartTime": self.started, "EndTime": self.ended, "DeathReason": self.death,
            "Labels": info.get("labels", {}),
        }

    def persisted(self) -> dict[str, Any]:
        return {"info": self.info, "state": self.state, "death": self.death, "started": self.started,
                "ended": self.ended}


class _Actor:
    __slots__ = ("actor_id", "name", "namespace", "class_name", "methods", "detached", "owner", "job_id", "state",
                 "executor", "node_id", "lease_id", "pid", "reason", "ready", "restarts", "created")

    def __init__(self, actor_id: str, name: str | None, namespace: str, class_name: str, methods: dict,
                 detached: bool, owner: str, job_id: str) -> None:
        self.actor_id, self.name, self.namespace, self.class_name = actor_id, name, namespace, class_name
        self.methods, self.detached, self.owner, self.job_id = methods, detached, owner, job_id
        self.state = "PENDING_CREATION"
        self.executor: ActorRef | None = None
        self.node_id: str | None = None
        self.lease_id: int | None = None
        self.pid = 0
        self.reason: Any = None
        self.ready = trio.Event()
        self.restarts = 0
        self.created = time.time()

    def wake(self) -> None:
        self.ready.set()

    def waiting(self) -> None:
        """No executor until it (re)starts."""
        self.executor, self.lease_id = None, None
        if self.ready.is_set():
            self.ready = trio.Event()

    def row(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id, "class_name": self.class_name, "name": self.name or "",
                "namespace": self.namespace, "state": self.state, "node_id": self.node_id, "pid": self.pid,
                "job_id": self.job_id, "detached": self.detached, "num_restarts": self.restarts,
                "death_cause": None if self.reason is None else str(self.reason), "owner": self.owner}

    def persisted(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("actor_id", "name", "namespace", "class_name", "methods", "detached",
                                              "owner", "job_id", "state", "node_id", "pid", "restarts", "created")}


class _PG:
    __slots__ = ("pg_id", "bundles", "strategy", "name", "namespace", "detached", "job_id", "state", "nodes",
                 "ready", "created", "selectors")

    def __init__(self, pg_id: str, bundles: list[dict[str, float]], strategy: str, name: str, namespace: str,
                 detached: bool, job_id: str, selectors: list[dict[str, str]] | None = None) -> None:
        self.pg_id, self.bundles, self.strategy, self.name = pg_id, bundles, strategy, name
        self.selectors = selectors  # Ray's bundle_label_selector: one per bundle, or None
        self.namespace, self.detached, self.job_id = namespace, detached, job_id
        self.state = "PENDING"
        self.nodes: list[str] | None = None
        self.ready = trio.Event()
        self.created = time.time()

    def row(self) -> dict[str, Any]:
        return {"placement_group_id": self.pg_id, "name": self.name, "namespace": self.namespace,
                "bundles": self.bundles, "bundles_to_node_id": self.nodes, "strategy": self.strategy,
                "state": self.state, "detached": self.detached, "job_id": self.job_id}

    def persisted(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("pg_id", "bundles", "strategy", "name", "namespace", "detached",
                                              "job_id", "state", "nodes", "created", "selectors")}

    def eligible(self, labels: dict[str, dict[str, str]]) -> list[set[str] | None] | None:
        """Per bundle, the nodes (of ``labels``: node id -> labels) its label selector
        allows; None where any node will do."""
        if not self.selectors:
            return None
        wanted = [parse_selector(s) if s else None for s in self.selectors]
        return [None if sel is None else {n for n, have in labels.items() if matches(have, sel)} for sel in wanted]


class ControlStore(Actor):
    """Cluster metadata and membership, on the head node."""

    def __init__(self, storage: Any = None, node_grace_s: float = 30.0) -> None:
        self.storage = storage  # a tray.store.Storage, or None: nothing persists
        self.node_grace_s = node_grace_s
        self.nodes: dict[str, _Node] = {}
        self.by_scheduler: dict[ActorRef, str] = {}
        self.actors: dict[str, _Actor] = {}
        self.names: dict[tuple[str, str], str] = {}
        self.dead_actors: deque[str] = deque()  # oldest first
        self.jobs: dict[str, dict[str, Any]] = {}
        self.drivers: dict[ActorRef, str] = {}  # a job's driver (its owner actor) -> job id
        self.owners: dict[ActorRef, set[str]] = {}  # an actor creator (watched) -> the actors it created
        self.owner_refs: dict[str, ActorRef] = {}  # the live creators, by process uid
        self.pgs: dict[str, _PG] = {}
        self.kv: dict[tuple[str, str], bytes] = {}
        self._view_pending = False
        self._placing = False
        self._place_again = False
        self.recovering: set[str] = set()  # nodes loaded from storage that have not registered again

    async def on_start(self) -> None:
        if self.storage is None:
            return
        tables = await self.storage.load()
        for node_id, blob in tables.get("nodes", {}).items():
            rec = pickle.loads(blob)
            node = self.nodes[node_id] = _Node(node_id, rec["info"])
            node.started, node.ended = rec["started"], rec["ended"]
            node.state, node.death = rec["state"], rec["death"]
            if node.state == ALIVE:
                self.recovering.add(node_id)
        for actor_id, blob in tables.get("actors", {}).items():
            rec = pickle.loads(blob)
            actor = _Actor(rec["actor_id"], rec["name"], rec["namespace"], rec["class_name"], rec["methods"],
                           rec["detached"], rec["owner"], rec["job_id"])
            actor.node_id, actor.pid = rec["node_id"], rec["pid"]
            actor.restarts, actor.created = rec["restarts"], rec["created"]
            actor.state = "RESTARTING" if rec["state"] != "DEAD" else "DEAD"
            self.actors[actor_id] = actor
            if actor.name is not None and actor.state != "DEAD":
                self.names[(actor.namespace, actor.name)] = actor_id
        for job_id, blob in tables.get("jobs", {}).items():
            self.jobs[job_id] = pickle.loads(blob)
        for pg_id, blob in tables.get("pgs", {}).items():
            rec = pickle.loads(blob)
            pg = self.pgs[pg_id] = _PG(rec["pg_id"], rec["bundles"], rec["strategy"], rec["name"], rec["namespace"],
                                       rec["detached"], rec["job_id"], rec.get("selectors"))
            pg.state, pg.nodes, pg.created = rec["state"], rec["nodes"], rec["created"]
            if pg.state == "CREATED":
                pg.ready.set()
        for key, value in tables.get("kv", {}).items():
            ns, _, k = key.partition("\0")
            self.kv[(ns, k)] = value
        if self.recovering:
            log.info("recovered %d node(s), %d actor(s), %d job(s), %d placement group(s), %d key(s); waiting "
                     "%.0f s for the nodes to register again", len(self.recovering), len(self.actors),
                     len(self.jobs), len(self.pgs), len(self.kv), self.node_grace_s)
        self.start_soon(self._expire_recovering)

    async def _expire_recovering(self) -> None:
        await trio.sleep(self.node_grace_s)
        for node_id in list(self.recovering):
            self._node_died(node_id, f"did not register again within {self.node_grace_s:.0f} s of a head restart")

    def _save(self, table: str, key: str, record: Any) -> None:
        if self.storage is not None:
            self.storage.put(table, key, pickle.dumps(record))

    def _drop(self, table: str, key: str) -> None:
        if self.storage is not None:
            self.storage.delete(table, key)

    async def flush(self) -> None:
        """Wait until every change so far is durable (tests, and a clean shutdown)."""
        if self.storage is not None:
            await self.storage.flush()

    # ------------------------------------------------------------------ nodes

    def register_node(self, info: dict[str, Any], scheduler: ActorRef, store: ActorRef,
                      hosted: dict[str, tuple[ActorRef, int, int]]) -> dict[str, Any]:
        """A node joins (or comes back after a head restart): ``hosted`` are the actors it runs,
        ``actor_id -> (executor, lease_id, pid)``. Returns the cluster's view."""
        node_id = info["node_id"]
        node = self.nodes.get(node_id)
        if node is not None and node.state == DEAD:
            raise NodeDeclaredDead(f"node {node_id} was declared dead ({node.death}); a dead node does not come "
                                   f"back: restart it to join as a new node")
        if node is None:
            node = self.nodes[node_id] = _Node(node_id, info)
        else:
            node.info = info
            node.total = to_units(info.get("resources", {}))
            node.available = dict(node.total)
        self.recovering.discard(node_id)
        node.scheduler, node.store = scheduler, store
        self.by_scheduler[scheduler] = node_id
        self.monitor(scheduler)
        for actor_id, (executor, lease_id, pid) in hosted.items():
            actor = self.actors.get(actor_id)
            if actor is not None and actor.state != "DEAD":
                self._bind(actor, executor, node_id, lease_id, pid)
        self._save("nodes", node_id, node.persisted())
        log.info("node %s joined at %s with %s", node_id, info.get("address"), from_units(node.total))
        self._push_view(now=True)
        self._place_soon()
        return self.view()

    def report(self, node_id: str, available: dict[str, int], total: dict[str, int] | None = None) -> None:
        """A node's free resources changed (and its totals, when bundles come and go)."""
        node = self.nodes.get(node_id)
        if node is None or node.state != ALIVE:
            return
        node.available = available
        if total is not None:
            node.total = total
        self._push_view()
        self._place_soon()

    def view(self) -> dict[str, Any]:
        """``node_id -> (scheduler, total, available, address)`` of the alive nodes."""
        return {n.node_id: (n.scheduler, n.total, n.available, n.info.get("address"))
                for n in self.nodes.values() if n.state == ALIVE and n.scheduler is not None}

    def _push_view(self, now: bool = False) -> None:
        if now:
            self._send_view()
        elif not self._view_pending:
            self._view_pending = True
            self.start_soon(self._push_later)

    async def _push_later(self) -> None:
        await trio.sleep(VIEW_DELAY_S)
        self._view_pending = False
        self._send_view()

    def _send_view(self) -> None:
        view = self.view()
        labels = {node_id: self.nodes[node_id].info.get("labels", {}) for node_id in view}
        for node in self.nodes.values():
            if node.state == ALIVE and node.scheduler is not None:
                node.scheduler.cluster_view.try_tell(view, labels)

    def nodes_table(self) -> list[dict[str, Any]]:
        """Every node this cluster has known, alive or dead (``tray.nodes()``)."""
        return [n.row() for n in self.nodes.values()]

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        node_id = self.by_scheduler.pop(ref, None)
        if node_id is not None:
            left = reason in ("shutdown", "normal")  # it stopped (tray stop, or its driver ended)
            self._node_died(node_id, "it shut down" if left else f"its node scheduler is unreachable ({reason})",
                            quiet=left)
        job_id = self.drivers.pop(ref, None)
        if job_id is not None:
            self._job_ended(job_id, ref)
        owned = self.owners.pop(ref, None)
        if owned is not None:  # its actors die with it (Ray's rule), but for detached ones that run
            self.owner_refs.pop(ref.actor_id.partition(":")[0], None)
            for actor_id in owned:
                actor = self.actors.get(actor_id)
                if actor is not None and (not actor.detached or actor.executor is None):
                    self.actor_failed(actor_id, "its owner died" if not actor.detached else
                                      "its creator, who restarts it, died while it was down")

    def _node_died(self, node_id: str, why: str, quiet: bool = False) -> None:
        node = self.nodes.get(node_id)
        self.recovering.discard(node_id)
        if node is None or node.state == DEAD:
            return
        node.state, node.death, node.ended = DEAD, why, time.time()
        log.log(logging.INFO if quiet else logging.WARNING, "node %s (%s) is dead: %s", node_id,
                node.info.get("address"), why)
        self._save("nodes", node_id, node.persisted())
        for actor in self.actors.values():
            if actor.node_id == node_id and actor.state != "DEAD":
                if actor.owner in self.owner_refs:
                    actor.state = "RESTARTING"  # its creator decides: restart elsewhere, or give up
                    actor.waiting()
                else:  # its creator is gone (or unknown after a head restart): nobody restarts it
                    self.actor_failed(actor.actor_id, f"its node {node_id} died")
        for pg in self.pgs.values():
            if pg.nodes is not None and node_id in pg.nodes and pg.state == "CREATED":
                self._unplace(pg, "RESCHEDULING")
        self._push_view(now=True)
        self._place_soon()

    # ------------------------------------------------------------------- jobs

    def register_job(self, job_id: str, info: dict[str, Any], driver: ActorRef) -> None:
        """A driver starts a job; it ends when the driver's connection does."""
        self.jobs[job_id] = {"job_id": job_id, "status": "RUNNING", "start_time": time.time(), "end_time": None,
                             "driver": driver, **info}
        self.drivers[driver] = job_id
        self.monitor(driver)
        self._save("jobs", job_id, self._job_row(job_id))

    def _job_row(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.jobs[job_id].items() if k != "driver"}

    def job_info(self, job_id: str) -> dict[str, Any] | None:
        """What a worker needs to run this job's code: namespace, sys.path, cwd, its driver."""
        return self.jobs.get(job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        return [self._job_row(j) for j in self.jobs]

    def _job_ended(self, job_id: str, driver: ActorRef) -> None:
        job = self.jobs.get(job_id)
        if job is None or job["status"] != "RUNNING":
            return
        job["status"], job["end_time"] = "SUCCEEDED", time.time()
        self._save("jobs", job_id, self._job_row(job_id))
        uid = driver.actor_id.partition(":")[0]
        for node in self.nodes.values():
            if node.state == ALIVE and node.scheduler is not None:
                node.scheduler.job_finished.try_tell(job_id, uid)
        for pg in list(self.pgs.values()):
            if pg.job_id == job_id and not pg.detached and pg.state != "REMOVED":
                self.remove_placement_group(pg.pg_id)

    # ----------------------------------------------------------------- actors

    def register_actor(self, actor_id: str, name: str | None, namespace: str, class_name: str,
                       methods: dict[str, Any], owner: ActorRef, job_id: str, detached: bool = False,
                       get_if_exists: bool = False) -> str | None:
        """Record an actor about to be created; a name must be free in its namespace.

        Returns None, or with ``get_if_exists`` the id of the live actor holding the name.
        Synchronous on purpose: an unnamed actor is registered with a tell, and the messages
        its creator sends next (a kill, a failure) must find it.
        """
        if name is not None:
            held = self.names.get((namespace, name))
            if held is not None and self.actors[held].state != "DEAD":
                if get_if_exists:
                    return held
                raise ValueError(f"an actor named {name!r} already exists in namespace {namespace!r}")
            self.names[(namespace, name)] = actor_id
        uid = owner.actor_id.partition(":")[0]
        actor = self.actors[actor_id] = _Actor(actor_id, name, namespace, class_name, methods, detached, uid, job_id)
        if owner not in self.owners:
            self.owners[owner] = set()
            self.owner_refs[uid] = owner
            self.monitor(owner)
        self.owners[owner].add(actor_id)
        if name is not None or detached:  # its creator flushes before it goes on: a head restart finds it
            self._save("actors", actor_id, actor.persisted())
        return None

    def _bind(self, actor: _Actor, executor: ActorRef, node_id: str, lease_id: int, pid: int) -> None:
        actor.executor, actor.node_id, actor.lease_id, actor.pid = executor, node_id, lease_id, pid
        actor.state = "ALIVE"
        actor.wake()

    def actor_ready(self, actor_id: str, executor: ActorRef, node_id: str, lease_id: int, pid: int) -> None:
        actor = self.actors.get(actor_id)
        if actor is None or actor.state == "DEAD":
            return
        self._bind(actor, executor, node_id, lease_id, pid)
        if actor.name is not None or actor.detached:
            self._save("actors", actor_id, actor.persisted())

    def actor_failed(self, actor_id: str, reason: Any) -> None:
        """The actor is gone for good (its creator says so, its owner died, or tray.kill)."""
        actor = self.actors.get(actor_id)
        if actor is None or actor.state == "DEAD":
            return
        actor.state, actor.reason = "DEAD", reason
        lease_id, node_id = actor.lease_id, actor.node_id
        actor.waiting()
        actor.wake()
        if actor.name is not None and self.names.get((actor.namespace, actor.name)) == actor_id:
            del self.names[(actor.namespace, actor.name)]
        if lease_id is not None:  # its worker process goes
            node = self.nodes.get(node_id) if node_id is not None else None
            if node is not None and node.state == ALIVE and node.scheduler is not None:
                node.scheduler.release.try_tell(lease_id)
        if actor.name is not None or actor.detached:
            self._drop("actors", actor_id)
        creator = self.owner_refs.get(actor.owner)
        if creator is not None:
            self.owners[creator].discard(actor_id)
        self.dead_actors.append(actor_id)
        if len(self.dead_actors) > MAX_DEAD_ACTORS:  # the state API shows the recent dead, not all
            self.actors.pop(self.dead_actors.popleft(), None)

    def actor_restarting(self, actor_id: str) -> bool:
        """Its creator restarts it: lookups wait for the new incarnation. False if it is dead."""
        actor = self.actors.get(actor_id)
        if actor is None or actor.state == "DEAD":
            return False
        actor.state = "RESTARTING"
        actor.restarts += 1
        actor.waiting()
        return True

    async def lookup_actor(self, actor_id: str) -> tuple[ActorRef | None, Any]:
        """``(executor, None)`` once the actor runs, or ``(None, reason)`` if it died or never was."""
        actor = self.actors.get(actor_id)
        if actor is None:
            return None, f"no actor {actor_id} is known to this cluster"
        while actor.executor is None and actor.state != "DEAD":
            await actor.ready.wait()
        return (actor.executor, None) if actor.state != "DEAD" else (None, actor.reason)

    def named_actor(self, name: str, namespace: str) -> tuple[str, str, dict[str, Any]] | None:
        """``(actor_id, class_name, methods)`` of the live actor named so, or None."""
        actor_id = self.names.get((namespace, name))
        actor = self.actors.get(actor_id) if actor_id is not None else None
        if actor is None or actor.state == "DEAD":
            return None
        return actor.actor_id, actor.class_name, actor.methods

    def kill_actor(self, actor_id: str, no_restart: bool = True) -> None:
        """``tray.kill``: for good, or (``no_restart=False``) only its process, so its
        creator restarts it if its ``max_restarts`` allows."""
        if no_restart:
            self.actor_failed(actor_id, "killed by tray.kill()")
            return
        actor = self.actors.get(actor_id)
        if actor is None or actor.lease_id is None or actor.node_id is None:
            return
        node = self.nodes.get(actor.node_id)
        if node is not None and node.scheduler is not None:
            node.scheduler.kill_lease_process.try_tell(actor.lease_id)

    def list_actors(self) -> list[dict[str, Any]]:
        return [a.row() for a in self.actors.values()]

    # --------------------------------------------------------------------- kv

    async def kv_put(self, namespace: str, key: str, value: bytes, overwrite: bool = True) -> bool:
        """Store ``value`` (durably, before answering); returns whether the key existed already
        (Ray's ``_internal_kv_put``)."""
        existed = (namespace, key) in self.kv
        if existed and not overwrite:
            return True
        self.kv[(namespace, key)] = value
        self._save_kv(namespace, key, value)
        await self.flush()
        return existed

    def _save_kv(self, namespace: str, key: str, value: bytes | None) -> None:
        if self.storage is None:
            return
        if value is None:
            self.storage.delete("kv", f"{namespace}\0{key}")
        else:
            self.storage.put("kv", f"{namespace}\0{key}", value)

    def kv_get(self, namespace: str, key: str) -> bytes | None:
        return self.kv.get((namespace, key))

    def kv_exists(self, namespace: str, key: str) -> bool:
        return (namespace, key) in self.kv

    async def kv_del(self, namespace: str, key: str, by_prefix: bool = False) -> int:
        keys = [k for (ns, k) in self.kv if ns == namespace and k.startswith(key)] if by_prefix else \
            ([key] if (namespace, key) in self.kv else [])
        for k in keys:
            del self.kv[(namespace, k)]
            self._save_kv(namespace, k, None)
        await self.flush()
        return len(keys)

    def kv_keys(self, namespace: str, prefix: str = "") -> list[str]:
        return [k for (ns, k) in self.kv if ns == namespace and k.startswith(prefix)]

    # -------------------------------------------------------- placement groups

    async def create_placement_group(self, pg_id: str, bundles: list[dict[str, float]], strategy: str, name: str,
                                     namespace: str, detached: bool, job_id: str,
                                     bundle_label_selector: list[dict[str, str]] | None = None) -> None:
        if name and any(p.name == name and p.namespace == namespace and p.state != "REMOVED"
                        for p in self.pgs.values()):
            raise ValueError(f"a placement group named {name!r} already exists in namespace {namespace!r}")
        pg = self.pgs[pg_id] = _PG(pg_id, bundles, strategy, name, namespace, detached, job_id,
                                   bundle_label_selector or None)
        self._save("pgs", pg_id, pg.persisted())
        alive = {n.node_id: n for n in self.nodes.values() if n.state == ALIVE}
        why = feasible_ever([to_units(b) for b in bundles], strategy, {k: n.total for k, n in alive.items()},
                            pg.eligible({k: n.info.get("labels", {}) for k, n in alive.items()}))
        if why is not None:
            log.warning("placement group %s cannot be placed yet: %s (it waits for nodes that can hold it)",
                        pg_id, why)
        self._place_soon()
        await self.flush()

    async def wait_placement_group(self, pg_id: str) -> list[str]:
        """Once the group is placed, the node of each of its bundles; raise if it is (or gets)
        removed."""
        pg = self.pgs.get(pg_id)
        if pg is None:
            raise ValueError(f"no placement group {pg_id}")
        while pg.state != "CREATED":
            if pg.state == "REMOVED":
                raise RayError(f"placement group {pg_id} was removed")
            await pg.ready.wait()
        return list(pg.nodes or ())

    def remove_placement_group(self, pg_id: str) -> None:
        pg = self.pgs.get(pg_id)
        if pg is None or pg.state == "REMOVED":
            return
        self._unplace(pg, "REMOVED")
        pg.ready.set()
        self._drop("pgs", pg_id)

    def placement_group_info(self, pg_id: str | None = None, name: str | None = None,
                             namespace: str | None = None) -> list[dict[str, Any]]:
        rows = []
        for pg in self.pgs.values():
            if pg_id is not None and pg.pg_id != pg_id:
                continue
            if name is not None and (pg.name != name or pg.state == "REMOVED" or
                                     (namespace is not None and pg.namespace != namespace)):
                continue
            rows.append(pg.row())
        return rows

    def _unplace(self, pg: _PG, state: str) -> None:
        """Give the group's bundles back to their nodes (whose workers in them are killed)."""
        for node_id in set(pg.nodes or ()):
            node = self.nodes.get(node_id)
            if node is not None and node.state == ALIVE and node.scheduler is not None:
                node.scheduler.return_bundles.try_tell(pg.pg_id)
        pg.nodes, pg.state = None, state
        if pg.ready.is_set() and state != "REMOVED":
            pg.ready = trio.Event()
        self._save("pgs", pg.pg_id, pg.persisted())

    def _place_soon(self) -> None:
        if not any(p.state in ("PENDING", "RESCHEDULING") for p in self.pgs.values()):
            return
        if self._placing:
            self._place_again = True  # resources changed while placing: one more pass after it
        else:
            self._placing = True
            self.start_soon(self._place_pending)

    async def _place_pending(self) -> None:
        """Place waiting groups, oldest first: choose nodes from the latest view, then reserve
        the bundles on each; a node that refuses (its view was stale) sends them all back."""
        try:
            self._place_again = False
            for pg in sorted(self.pgs.values(), key=lambda p: p.created):
                if pg.state not in ("PENDING", "RESCHEDULING"):
                    continue
                alive = {n.node_id: n for n in self.nodes.values() if n.state == ALIVE and n.scheduler is not None}
                units = [to_units(b) for b in pg.bundles]
                chosen = place(units, pg.strategy, {k: n.available for k, n in alive.items()},
                               {k: n.total for k, n in alive.items()},
                               pg.eligible({k: n.info.get("labels", {}) for k, n in alive.items()}))
                if chosen is None:
                    continue
                by_node: dict[str, list[tuple[int, dict[str, int]]]] = {}
                for index, node_id in enumerate(chosen):
                    by_node.setdefault(node_id, []).append((index, units[index]))
                reserved = []
                for node_id, bundles in by_node.items():
                    try:
                        now = await alive[node_id].scheduler.reserve_bundles.ask(pg.pg_id, bundles)  # type: ignore[union-attr]
                    except RayError:
                        now = None
                    if now is None:
                        break
                    alive[node_id].total, alive[node_id].available = now
                    reserved.append(node_id)
                if pg.state not in ("PENDING", "RESCHEDULING") or len(reserved) != len(by_node):
                    for node_id in reserved:  # removed meanwhile, or a node refused
                        alive[node_id].scheduler.return_bundles.try_tell(pg.pg_id)  # type: ignore[union-attr]
                    continue
                pg.nodes, pg.state = chosen, "CREATED"
                self._push_view(now=True)  # before anyone hears it is ready: schedulers know its bundles
                pg.ready.set()
                self._save("pgs", pg.pg_id, pg.persisted())
        finally:
            self._placing = False
        if self._place_again:
            self._place_soon()
