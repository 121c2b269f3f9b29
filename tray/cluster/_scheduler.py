"""The node scheduler: grants leases on workers by resource shape, and keeps the pool sized.

A lease request that fits the node's free resources gets an idle worker at once (or as
soon as one is started); one that could never fit fails at once with
``TaskUnschedulableError`` naming what is missing, instead of waiting forever.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from typing import Any

import trio

from ..actors import Actor, ActorRef, Waiter
from ..exceptions import RayError, TaskUnschedulableError
from ..store import STORE_NAME
from ._resources import Ledger, from_units

log = logging.getLogger("tray.cluster")

POOL_NAME = "tray.worker_pool"
SCHEDULER_NAME = "tray.scheduler"


class _Worker:
    __slots__ = ("worker_id", "proc", "executor", "pid", "lease", "dedicated", "lent")

    def __init__(self, worker_id: str, proc: ActorRef) -> None:
        self.worker_id = worker_id
        self.proc = proc
        self.executor: ActorRef | None = None  # set when the process registers
        self.pid = 0
        self.lease: int | None = None
        self.dedicated = False  # hosts an actor: never back to the idle pool
        self.lent = 0  # CPU units its task lent back while blocked in tray.get


class _ActorEntry:
    __slots__ = ("actor_id", "name", "namespace", "class_name", "methods", "executor", "lease_id", "reason", "ready")

    def __init__(self, actor_id: str, name: str | None, namespace: str, class_name: str,
                 methods: dict[str, Any]) -> None:
        self.actor_id, self.name, self.namespace, self.class_name = actor_id, name, namespace, class_name
        self.methods = methods
        self.executor: ActorRef | None = None
        self.lease_id: int | None = None
        self.reason: Any = None
        self.ready = trio.Event()

    def wake(self) -> None:
        self.ready.set()

    def lost(self) -> None:
        """Its process died: no executor until a restart (or a verdict of death)."""
        self.executor, self.lease_id = None, None
        if self.ready.is_set():
            self.ready = trio.Event()


class NodeScheduler(Actor):
    """Leases, resources and the worker pool of one node."""

    def __init__(self, resources: dict[str, float], prestart: int) -> None:
        self.ledger = Ledger(resources)
        self.prestart = prestart
        self.workers: dict[str, _Worker] = {}
        self.by_proc: dict[ActorRef, _Worker] = {}
        self.idle: list[_Worker] = []
        self.starting = 0
        self.queue: deque[Waiter] = deque()  # lease requests waiting: data is (shape, dedicated, owner)
        self.leases: dict[int, tuple[_Worker, dict[str, int], str]] = {}  # id -> worker, shape, owner's uid
        self.dead_owners: dict[str, None] = {}  # worker processes that died (recent ones), by uid
        self.deaths: dict[str, str] = {}  # recently dead workers: why
        self.deaths_seen: dict[str, trio.Event] = {}
        self.actors: dict[str, _ActorEntry] = {}
        self.names: dict[tuple[str, str], str] = {}
        self._lease_ids = itertools.count(1)
        self._worker_ids = itertools.count(1)

    async def on_start(self) -> None:
        for _ in range(self.prestart):
            self.start_soon(self._start_worker)

    @property
    def pool(self) -> ActorRef:
        """The supervisor of the WorkerProcess actors (found by name: it may have restarted)."""
        pool = self.system.lookup(POOL_NAME)
        if pool is None:
            raise RuntimeError("the worker pool is not running")
        return pool

    # ------------------------------------------------------------------ leases

    async def lease(self, shape: dict[str, int], owner: str, dedicated: bool = False) -> tuple:
        """A worker for ``shape``: ``(lease_id, worker_id, executor, pid)``, once one is free."""
        if not self.ledger.feasible(shape):
            raise TaskUnschedulableError(self._unschedulable(shape))
        if owner in self.dead_owners:  # a request that was on its way when its process died
            raise RayError(f"the process {owner} that asked for this lease died")
        if not self.queue and self.idle and self.ledger.acquire(shape):
            return self._grant(self.idle.pop(), shape, dedicated, owner)
        waiter = Waiter((shape, dedicated, owner))
        self.start_soon(self._dispatch_soon)  # the waiter is queued by the time it runs
        return await waiter.wait(self.queue)

    def release(self, lease_id: int) -> None:
        """Give a lease back: its resources are free, its worker idle (or gone, if it hosted an actor)."""
        held = self.leases.pop(lease_id, None)
        if held is None:
            return
        worker, shape, _owner = held
        self._take_back(worker)
        self.ledger.release(shape)
        worker.lease = None
        if worker.dedicated:
            self.start_soon(self._retire, worker)
        elif worker.worker_id in self.workers:
            self.idle.append(worker)
        self._dispatch()

    async def _retire(self, worker: _Worker) -> None:
        """Stop a worker that hosted an actor (its process may be gone already)."""
        try:
            await self.pool.terminate_child.ask(worker.proc)
        except (KeyError, RayError):
            pass

    def worker_blocked(self, worker_id: str) -> None:
        """A task waits in ``tray.get``: lend its CPUs to others meanwhile (Ray does the same),
        so tasks that wait on tasks cannot starve the node into a deadlock."""
        worker = self.workers.get(worker_id)
        if worker is None or worker.lease is None or worker.lent:
            return
        cpus = self.leases[worker.lease][1].get("CPU", 0)
        if cpus:
            worker.lent = cpus
            self.ledger.free["CPU"] += cpus
            self._dispatch()

    def worker_unblocked(self, worker_id: str) -> None:
        """The task runs again: it takes its CPUs back (the node may be over-full for a while)."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.lent:
            self.ledger.free["CPU"] -= worker.lent
            worker.lent = 0

    def _take_back(self, worker: _Worker) -> None:
        if worker.lent:
            self.ledger.free["CPU"] -= worker.lent
            worker.lent = 0

    def _grant(self, worker: _Worker, shape: dict[str, int], dedicated: bool, owner: str) -> tuple:
        lease_id = next(self._lease_ids)
        worker.lease = lease_id
        worker.dedicated = dedicated
        self.leases[lease_id] = (worker, shape, owner)
        return (lease_id, worker.worker_id, worker.executor, worker.pid)

    async def _dispatch_soon(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        """Grant what fits to idle workers; start workers for what fits but has none (as
        many as the free resources can run at once, not one per waiting request)."""
        for waiter in list(self.queue):
            if not self.idle:
                break
            shape, dedicated, owner = waiter.data
            if self.ledger.acquire(shape):
                self.queue.remove(waiter)
                waiter.hand(self._grant(self.idle.pop(), shape, dedicated, owner))
        wanting, spare = 0, dict(self.ledger.free)
        for waiter in self.queue:
            shape = waiter.data[0]
            if all(spare.get(k, 0) >= v for k, v in shape.items()):
                for k, v in shape.items():
                    spare[k] -= v
                wanting += 1
        for _ in range(wanting - self.starting):
            self.start_soon(self._start_worker)

    def _unschedulable(self, shape: dict[str, int]) -> str:
        want, have = from_units(shape), from_units(self.ledger.total)
        missing = {k: v for k, v in want.items() if have.get(k, 0) < v}
        return (f"a task or actor needs {want} but no node can ever provide {missing}: this node has {have}."
                f" Lower the request, or start tray with more (e.g. tray.init(num_cpus=..., resources={{...}})).")

    # ----------------------------------------------------------------- workers

    async def _start_worker(self) -> None:
        worker_id = f"w{next(self._worker_ids)}"
        self.starting += 1
        try:
            proc = await self.pool.start_child.ask(worker_id)
        except Exception:
            self.starting -= 1
            log.exception("could not start a worker process")
            return
        worker = _Worker(worker_id, proc)
        self.workers[worker_id] = worker
        self.by_proc[proc] = worker
        self.monitor(proc)

    async def register_worker(self, worker_id: str, executor: ActorRef, pid: int) -> None:
        """A started worker process is ready to run tasks."""
        worker = self.workers.get(worker_id)
        if worker is None:
            raise KeyError(f"unknown worker {worker_id}")
        self.starting -= 1
        worker.executor, worker.pid = executor, pid
        self.idle.append(worker)
        self._dispatch()

    async def death_of(self, worker_id: str) -> str:
        """Why a worker process died (its exit code or signal), once the node has seen it go."""
        while worker_id in self.workers:
            event = self.deaths_seen.setdefault(worker_id, trio.Event())
            await event.wait()
        return self.deaths.get(worker_id, "unknown")

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        worker = self.by_proc.pop(ref, None)
        if worker is None:
            return
        self.workers.pop(worker.worker_id, None)
        self.deaths[worker.worker_id] = str(reason)
        if len(self.deaths) > 1000:
            del self.deaths[next(iter(self.deaths))]
        seen = self.deaths_seen.pop(worker.worker_id, None)
        if seen is not None:
            seen.set()
        if worker.executor is None:
            self.starting -= 1
        else:
            self._owner_died(worker.executor.actor_id.partition(":")[0])
        if worker in self.idle:
            self.idle.remove(worker)
        if worker.lease is not None:
            held = self.leases.pop(worker.lease, None)
            if held is not None:
                self._take_back(worker)
                self.ledger.release(held[1])
            for entry in self.actors.values():
                if entry.lease_id == worker.lease and entry.reason is None:
                    entry.lost()  # until its creator restarts it or gives up
        self._dispatch()

    def _owner_died(self, uid: str) -> None:
        """A worker process died: the leases it held (for tasks it submitted) come back, its
        waiting lease requests go, and so do the objects it owned or was writing."""
        self.dead_owners[uid] = None
        if len(self.dead_owners) > 1000:
            del self.dead_owners[next(iter(self.dead_owners))]
        for waiter in [w for w in self.queue if w.data[2] == uid]:  # first: releases below dispatch
            self.queue.remove(waiter)
            waiter.fail(RayError(f"the process {uid} that asked for this lease died"))
        for lease_id in [lid for lid, held in self.leases.items() if held[2] == uid]:
            actor = next((a for a in self.actors.values() if a.lease_id == lease_id), None)
            if actor is not None:  # an actor it created shares its fate (Ray's rule)
                self.actor_failed(actor.actor_id, f"its owner (process {uid}) died")
            else:
                self.release(lease_id)
        store = self.system.lookup(STORE_NAME)
        if store is not None:
            store.process_died.tell_nowait(uid)

    async def kill_worker(self, worker_id: str) -> None:
        """SIGKILL a worker (force-cancel); its leases fail, its resources come back."""
        worker = self.workers.get(worker_id)
        if worker is not None:
            await worker.proc.kill_process.ask()

    # ------------------------------------------------------------------ actors

    def register_actor(self, actor_id: str, name: str | None, namespace: str, class_name: str,
                       methods: dict[str, Any], get_if_exists: bool = False) -> str | None:
        """Record an actor about to be created; a name must be free in its namespace.

        Returns None, or with ``get_if_exists`` the id of the live actor holding the name.
        """
        if name is not None:
            held = self.names.get((namespace, name))
            if held is not None and self.actors[held].reason is None:
                if get_if_exists:
                    return held
                raise ValueError(f"an actor named {name!r} already exists in namespace {namespace!r}")
            self.names[(namespace, name)] = actor_id
        self.actors[actor_id] = _ActorEntry(actor_id, name, namespace, class_name, methods)
        return None

    def actor_ready(self, actor_id: str, executor: ActorRef, lease_id: int) -> None:
        entry = self.actors.get(actor_id)
        if entry is None:
            return
        entry.executor, entry.lease_id = executor, lease_id
        entry.wake()

    def actor_failed(self, actor_id: str, reason: Any) -> None:
        """The actor is gone for good (its creator says so, or tray.kill)."""
        entry = self.actors.get(actor_id)
        if entry is not None and entry.reason is None:
            entry.reason = reason
            entry.wake()
            if entry.lease_id is not None:
                self.release(entry.lease_id)
                entry.lease_id = None

    def actor_restarting(self, actor_id: str) -> None:
        """Its creator restarts it: lookups wait for the new incarnation."""
        entry = self.actors.get(actor_id)
        if entry is not None and entry.reason is None:
            entry.lost()

    async def kill_actor_process(self, actor_id: str) -> None:
        """``tray.kill(no_restart=False)``: end the actor's process; its creator may restart it."""
        entry = self.actors.get(actor_id)
        held = self.leases.get(entry.lease_id) if entry is not None and entry.lease_id is not None else None
        if held is not None:
            await held[0].proc.kill_process.ask()

    async def lookup_actor(self, actor_id: str) -> tuple[ActorRef | None, Any]:
        """``(executor, None)`` once the actor runs, or ``(None, reason)`` if it died or never was."""
        entry = self.actors.get(actor_id)
        if entry is None:
            return None, f"no actor {actor_id} is known to this node"
        while entry.executor is None and entry.reason is None:
            await entry.ready.wait()
        return (entry.executor, None) if entry.reason is None else (None, entry.reason)

    def named_actor(self, name: str, namespace: str) -> tuple[str, str, dict[str, Any]] | None:
        """``(actor_id, class_name, methods)`` of the live actor named so, or None."""
        actor_id = self.names.get((namespace, name))
        entry = self.actors.get(actor_id) if actor_id is not None else None
        if entry is None or entry.reason is not None:
            return None
        return entry.actor_id, entry.class_name, entry.methods

    def kill_actor(self, actor_id: str) -> None:
        """End an actor: its dedicated worker process stops; callers get ActorDiedError."""
        self.actor_failed(actor_id, "killed by tray.kill()")

    # ------------------------------------------------------------------- views

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        """(total, available) resources of this node."""
        return from_units(self.ledger.total), from_units(self.ledger.free)

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers.values() if w.pid]

    def processes(self) -> list[dict[str, Any]]:
        """The node's worker processes: id, pid, the executor that answers for them, what runs."""
        rows = []
        for w in self.workers.values():
            if w.executor is None:
                continue
            actor = next((a.class_name for a in self.actors.values()
                          if a.lease_id is not None and a.lease_id == w.lease), None)
            rows.append({"worker_id": w.worker_id, "pid": w.pid, "executor": w.executor, "actor": actor,
                         "leased": w.lease is not None, "leased_to": self.leases[w.lease][2] if w.lease in self.leases else None})
        return rows
