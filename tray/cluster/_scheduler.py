"""The node scheduler: grants leases on workers by resource shape, spills back to other nodes,
and keeps the pool sized.

A lease request that fits the node's free resources gets an idle worker of the caller's
job at once (or as soon as one is started). One that does not fit here now goes to a
node that has room by the cluster's latest view (a *spillback*: the caller asks that
node instead); one that fits nowhere now waits here if this node could ever run it, and
one that no node in the cluster could ever run fails at once with
``TaskUnschedulableError`` naming what is missing, instead of waiting forever. Two
exceptions, as in Ray: a request into a placement group that is not placed yet waits
here for the group (and fails if the group is removed first); and where a request goes
is narrowed first by its label selectors and shaped by Ray's default for actors
(``_policy``: pure choices, fed this node's view of the cluster).

Workers belong to one job at a time (the first lease of a fresh worker assigns it its
job's namespace, import path and log sink), as Ray's do, so two drivers' code never
mixes in one process. They are pooled per runtime environment too: a request that carries
a runtime_env (``(key, env)``) gets only a worker started in it; one is started for it
after the env is prepared on this node (off the loop, once per env, within its setup
timeout). A setup that fails fails the requests waiting for it with
``RuntimeEnvSetupError`` (and new ones for a while), instead of being retried per task.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import random
import tempfile
import threading
from collections import deque
from typing import Any

import trio

from ..actors import Actor, ActorRef, Waiter
from ..exceptions import RayError, RuntimeEnvSetupError, TaskUnschedulableError
from ..store import STORE_NAME
from . import _runtime_env as renvs
from ._grants import Granted, Spill
from ._labels import NODE_ID_LABEL, describe, matches
from ._logs import MAX_READ, death_text, list_logs, log_dir_of, read_log
from ._placement import group_of
from ._policy import choose_labelled, hybrid
from ._resources import UNIT, GpuHold, Instances, Ledger, from_units

log = logging.getLogger("tray.cluster")

POOL_NAME = "tray.worker_pool"
SCHEDULER_NAME = "tray.scheduler"
REPORT_DELAY_S = 0.01  # resource changes are reported to the control store at most this often
MAX_HOPS = 3  # a request spilled this many times waits where it is (or fails if it can never run there)
ENV_RETRY_AFTER_S = 30.0  # a runtime_env whose setup failed fails new requests at once for this long
SETUP_GRACE_S = 5.0  # past a setup's own timeout, the node stops waiting for it (a fetch that hangs)
ENV_START_ATTEMPTS = 3  # workers of a runtime_env that die before they register, in a row, fail the env


class _Worker:
    __slots__ = ("worker_id", "proc", "executor", "pid", "lease", "dedicated", "lent", "job", "retire", "env")

    def __init__(self, worker_id: str, proc: ActorRef, env: str | None = None) -> None:
        self.worker_id = worker_id
        self.proc = proc
        self.env = env  # the key of the runtime_env it was started in (None: the default)
        self.executor: ActorRef | None = None  # set when the process registers
        self.pid = 0
        self.lease: int | None = None
        self.dedicated = False  # hosts an actor: never back to the idle pool
        self.lent = 0  # CPU units its task lent back while blocked in tray.get
        self.job: str | None = None  # the job it runs code of (None: fresh)
        self.retire = False  # its job ended: stop it when its lease comes back


class _Request:
    __slots__ = ("shape", "owner", "job", "actor_id", "detached", "renv", "pinned")

    def __init__(self, shape: dict[str, int], owner: str, job: str, actor_id: str | None, detached: bool,
                 renv: tuple[str, dict[str, Any]] | None = None) -> None:
        self.shape, self.owner, self.job, self.actor_id, self.detached = shape, owner, job, actor_id, detached
        self.renv = renv  # (key, runtime_env), or None for the default environment
        self.pinned = False  # waits here by its strategy (labels, node affinity): never moved elsewhere

    @property
    def env(self) -> str | None:
        return self.renv[0] if self.renv is not None else None


class _Lease:
    __slots__ = ("worker", "shape", "owner", "actor_id", "detached", "gpus")

    def __init__(self, worker: _Worker, req: _Request) -> None:
        self.worker, self.shape, self.owner = worker, req.shape, req.owner
        self.actor_id, self.detached = req.actor_id, req.detached
        self.gpus: GpuHold | None = None  # the GPUs it holds (the node's, or its placement group bundle's)


def _fits(free: dict[str, int], shape: dict[str, int]) -> bool:
    return all(free.get(k, 0) >= v for k, v in shape.items())


class NodeScheduler(Actor):
    """Leases, resources and the worker pool of one node."""

    def __init__(self, resources: dict[str, float], prestart: int, info: dict[str, Any] | None = None,
                 echo_output: bool = True) -> None:
        self.ledger = Ledger(resources)
        gpus = self.ledger.total.get("GPU", 0)  # (a fractional last GPU is a GPU too)
        self.gpus = Instances({i: min(UNIT, gpus - i * UNIT) for i in range(-(-gpus // UNIT))})
        # (pg, index) -> the bundle's GPUs, and the node's it holds for them
        self.bundle_gpus: dict[tuple[str, int], tuple[Instances, GpuHold]] = {}
        self.prestart = prestart
        self.info = info or {}
        self.node_id: str = self.info.get("node_id", "")
        self.echo_output = echo_output  # the driver hosts this node: workers print to its terminal
        self.workers: dict[str, _Worker] = {}
        self.by_proc: dict[ActorRef, _Worker] = {}
        self.idle: list[_Worker] = []
        self.starting = 0
        self.starting_in: dict[str | None, int] = {}  # of those, by runtime_env key
        self.envs: dict[str, dict[str, Any]] = {}  # runtime_envs asked for here, by key
        self.prepared: dict[str, renvs.Prepared] = {}  # those ready on this node
        self.env_locks: dict[str, trio.Lock] = {}  # one setup per env at a time
        self.env_failed: dict[str, tuple[str, float]] = {}  # failed setups: (error, when)
        self.env_start_deaths: dict[str, int] = {}  # workers of an env that died starting, in a row
        self.queue: deque[Waiter] = deque()  # lease requests waiting here: data is a _Request
        self.leases: dict[int, _Lease] = {}
        self.owners: dict[ActorRef, str] = {}  # processes holding or asking for leases, watched
        self.dead_owners: dict[str, None] = {}  # processes that died (recent ones), by uid
        self.deaths: dict[str, str] = {}  # recently dead workers: why
        self.kill_reasons: dict[str, str] = {}  # workers killed on purpose, not dead yet: why (for death_of)
        self.deaths_seen: dict[str, trio.Event] = {}
        self.dead_executors: dict[str, str] = {}  # recently dead workers' executor actor ids -> worker ids
        self.log_dir = log_dir_of(self.info)
        self.control: ActorRef | None = None
        self._joined = trio.Event()
        self.view: dict[str, tuple[ActorRef, dict[str, int], dict[str, int], str]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # job id -> its config, for workers
        self.bundles: dict[str, list[tuple[int, dict[str, int], dict[str, int]]]] = {}  # pg -> (index, shape, gained)
        self._reporting = False
        self._totals_changed = False
        self._spread = itertools.count()
        self._random = random.Random()
        self.labels: dict[str, dict[str, str]] = {}  # node id -> its labels (from the control store)
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

    # ----------------------------------------------------------------- cluster

    def joined(self, control: ActorRef, view: dict[str, Any]) -> None:
        """This node is (again) a member: where the control store is, and who else is."""
        self.control = control
        self.view = view
        self._joined.set()
        self._report_soon(totals=True)

    async def node_info(self) -> dict[str, Any]:
        """What a process joining this node needs: its id, store, and the control store
        (once the node has joined the cluster)."""
        await self._joined.wait()
        return {**self.info, "control": self.control}

    def cluster_view(self, view: dict[str, Any], labels: dict[str, dict[str, str]] | None = None) -> None:
        """The control store's latest picture of the alive nodes, their free resources and
        their labels."""
        self.view = view
        if labels is not None:
            self.labels = labels
        self._spill_queued()

    def _report_soon(self, totals: bool = False) -> None:
        self._totals_changed |= totals
        if self.control is not None and not self._reporting:
            self._reporting = True
            self.start_soon(self._report)

    async def _report(self) -> None:
        await trio.sleep(REPORT_DELAY_S)
        self._reporting = False
        total = self.ledger.total if self._totals_changed else None
        self._totals_changed = False
        # if the head is gone, the head link reconnects and the node reports afresh
        self.control.report.try_tell(self.node_id, dict(self.ledger.free), total)  # type: ignore[union-attr]

    # ------------------------------------------------------------------ leases

    async def lease(self, shape: dict[str, int], owner: ActorRef, job: str, actor_id: str | None = None,
                    detached: bool = False, strategy: tuple | None = None, hops: int = 0,
                    renv: tuple[str, dict[str, Any]] | None = None) -> Granted | Spill:
        """A worker for ``shape`` (started in runtime_env ``renv``, ``(key, env)``; None: the
        default) once one is free here (:class:`Granted`), or the node to ask instead
        (:class:`Spill`)."""
        uid = owner.actor_id.partition(":")[0]
        if uid in self.dead_owners:  # a request that was on its way when its process died
            raise RayError(f"the process {uid} that asked for this lease died")
        if renv is not None:
            self._check_env(renv)
        try:
            elsewhere = self._choose(shape, strategy, hops, actor_id is not None)
        except TaskUnschedulableError:
            group = group_of(shape)
            if group is None or (hops > 0 and strategy is not None):  # sent to the group's node: its labels decide
                raise
            elsewhere = await self._group_node(shape, *group, hops, strategy)  # not placed yet: wait for it
            if uid in self.dead_owners:
                raise RayError(f"the process {uid} that asked for this lease died") from None
        if elsewhere is not None:
            return Spill(*elsewhere)
        self._watch_owner(owner, uid)
        if job not in self.jobs:
            await self._fetch_job(job)
        req = _Request(shape, uid, job, actor_id, detached, renv)
        req.pinned = strategy is not None and strategy[0] in ("labels", "node")
        if not self.queue and self._fits(shape):
            worker = self._take_idle(job, req.env)
            if worker is not None:
                self.ledger.acquire(shape)
                self._report_soon()
                return self._grant(worker, req)
        waiter = Waiter(req)
        self.start_soon(self._dispatch_soon)  # the waiter is queued by the time it runs
        return await waiter.wait(self.queue)

    async def _group_node(self, shape: dict[str, int], pg_id: str, index: int, hops: int,
                          strategy: tuple | None = None) -> tuple[ActorRef, str] | None:
        """Where a request into placement group ``pg_id`` (bundle ``index``, -1: any) goes once
        the group is placed: it waits here while the group is pending (resources busy, or
        nodes yet to join); a group removed first fails it."""
        if self.control is None:
            await self._joined.wait()
        try:
            nodes = await self.control.wait_placement_group.ask(pg_id)  # type: ignore[union-attr]
        except ValueError:
            raise TaskUnschedulableError(f"placement group {pg_id} is unknown to the cluster") from None
        except RayError as exc:
            removed = "was removed" in str(exc)
            raise TaskUnschedulableError(f"placement group {pg_id} was removed before this task or actor could run "
                                         f"in it" if removed else f"placement group {pg_id}: {exc}") from None
        where = [nodes[index]] if 0 <= index < len(nodes or ()) else list(dict.fromkeys(nodes or ()))
        if strategy is not None and strategy[0] == "labels":  # of the group's nodes, those its labels match
            labelled = self._nodes()
            where = [n for n in where if n in labelled and any(matches(labelled[n][2], s) for s in strategy[1])] \
                or where
        if self.node_id in where and self.ledger.feasible(shape):
            return None
        others = [n for n in where if n != self.node_id and n in self.view]
        if others and hops < MAX_HOPS:
            fits_now = [n for n in others if _fits(self.view[n][2], shape)]
            return self._spill_to((fits_now or others)[0], shape)
        raise TaskUnschedulableError(
            f"a task or actor asks for {from_units(shape)} of placement group {pg_id}, which its "
            f"{'bundle ' + str(index) if index >= 0 else 'bundles'} cannot hold")

    def _choose(self, shape: dict[str, int], strategy: tuple | None, hops: int,
                actor: bool = False) -> tuple[ActorRef, str] | None:
        """Where a request should be served: None for here, or ``(scheduler, node_id)``."""
        here = self.ledger.feasible(shape)
        if strategy is not None and strategy[0] == "labels":
            return self._choose_labelled(shape, strategy, hops)
        if strategy is None and actor and hops == 0 and group_of(shape) is None:
            return self._place_actor(shape)
        if strategy is not None and strategy[0] == "node":
            _, node_id, soft = strategy
            if node_id == self.node_id and here:
                return None
            entry = self.view.get(node_id)
            if node_id != self.node_id and entry is not None and _fits(entry[1], shape):
                return entry[0], node_id
            if not soft:
                raise TaskUnschedulableError(
                    f"NodeAffinitySchedulingStrategy(node_id={node_id!r}, soft=False): that node "
                    f"{'is not alive' if entry is None and node_id != self.node_id else 'cannot ever provide'}"
                    f" {from_units(shape)}")
        others = {n: e for n, e in self.view.items() if n != self.node_id}
        if strategy is not None and strategy[0] == "spread" and hops == 0:
            nodes = sorted(n for n, e in others.items() if _fits(e[1], shape))
            if here:
                nodes = sorted(nodes + [self.node_id])
            now = [n for n in nodes if (n == self.node_id and self.ledger.fits(shape)) or
                   (n != self.node_id and _fits(others[n][2], shape))]
            pool = now or nodes
            turn = next(self._spread) % max(1, len(pool))
            pick = pool[turn] if pool else None
            if pick is None:
                raise TaskUnschedulableError(self._unschedulable(shape))
            return None if pick == self.node_id else self._spill_to(pick, shape)
        if here and (self.ledger.fits(shape) or hops > 0):  # spilled here: wait here
            return None
        if hops < MAX_HOPS:
            room = [n for n, e in others.items() if _fits(e[2], shape)]
            if room:  # the one with the most of the first resource free (CPU, mostly)
                return self._spill_to(max(room, key=lambda n: sum(others[n][2].values())), shape)
        if here:
            return None  # wait here for room
        able = sorted(n for n, e in others.items() if _fits(e[1], shape))
        if able and hops < MAX_HOPS:
            return self._spill_to(able[0], shape)
        raise TaskUnschedulableError(self._unschedulable(shape))

    def _nodes(self) -> dict[str, tuple[dict[str, int], dict[str, int], dict[str, str]]]:
        """Every alive node as ``(total, free, labels)``, this one by its own books."""
        nodes = {n: (e[1], e[2], self.labels.get(n, {})) for n, e in self.view.items() if n != self.node_id}
        nodes[self.node_id] = (self.ledger.total, self.ledger.free, self.info.get("labels", {}))
        return nodes

    def _place_actor(self, shape: dict[str, int]) -> tuple[ActorRef, str] | None:
        """Ray's default for an actor (``_policy``): one asking for nothing goes to a random
        alive node; one asking for resources by the hybrid policy, from here."""
        nodes = self._nodes()
        if not shape:
            pick = self._random.choice(sorted(nodes))
            return None if pick == self.node_id else self._spill_to(pick, shape)
        best = hybrid(shape, self.node_id, {n: (t, f) for n, (t, f, _labels) in nodes.items()})
        if best is None:  # no room anywhere now: wait where the default path waits
            return self._choose(shape, None, 0)
        return None if best == self.node_id else self._spill_to(best, shape)

    def _choose_labelled(self, shape: dict[str, int], strategy: tuple, hops: int) -> tuple[ActorRef, str] | None:
        """A request with label selectors (``label_selector`` and its ``fallback_strategy``,
        or ``NodeLabelSchedulingStrategy``): only nodes whose labels match, the selectors tried
        in order; none matching anywhere fails it at once, naming the selectors."""
        _, selectors, prefer, spread = strategy
        nodes = self._nodes()
        if hops > 0 and self.ledger.feasible(shape) and any(matches(nodes[self.node_id][2], sel)
                                                             for sel in selectors):
            return None  # sent here as a matching node: wait here
        if spread:
            able = sorted(n for n, (total, _free, labels) in nodes.items()
                          if _fits(total, shape) and any(matches(labels, sel) for sel in selectors))
            pool = [n for n in able if _fits(nodes[n][1], shape)] or able
            if pool:
                pick = pool[next(self._spread) % len(pool)]
                return None if pick == self.node_id else self._spill_to(pick, shape)
        chosen = choose_labelled(shape, selectors, self.node_id, nodes, prefer)
        if chosen is None:
            seen = sorted({f"{k}={v}" for _t, _f, labels in nodes.values() for k, v in labels.items()
                           if k != NODE_ID_LABEL})
            wanted = " or ".join(describe(sel) for sel in selectors)
            raise TaskUnschedulableError(
                f"a task or actor needs {from_units(shape)} on a node whose labels match {wanted}, and none of the "
                f"{len(nodes)} alive node(s) that could hold it does (their labels: {seen or 'only ray.io/node-id'})."
                f" Start a node with matching labels (tray start --labels '{{...}}'), or change the selector.")
        pick = chosen[0]
        return None if pick == self.node_id else self._spill_to(pick, shape)

    def _spill_to(self, node_id: str, shape: dict[str, int]) -> tuple[ActorRef, str]:
        """Count what we send there against its free resources until its next report, so a
        burst of requests spreads instead of piling onto the node that looked free."""
        sched, total, free, address = self.view[node_id]
        self.view[node_id] = (sched, total, {k: v - shape.get(k, 0) for k, v in free.items()}, address)
        return sched, node_id

    def _spill_queued(self) -> None:
        """Requests waiting here that another node now has room for go there."""
        if not self.queue or len(self.view) < 2:
            return
        for waiter in list(self.queue):
            req = waiter.data
            if req.pinned or self.ledger.fits(req.shape):
                continue
            room = [n for n, e in self.view.items() if n != self.node_id and _fits(e[2], req.shape)]
            if room:
                self.queue.remove(waiter)
                waiter.hand(Spill(*self._spill_to(room[0], req.shape)))

    def release(self, lease_id: int) -> None:
        """Give a lease back: its resources are free, its worker idle (or gone, if it hosted an
        actor or its job ended)."""
        held = self.leases.pop(lease_id, None)
        if held is None:
            return
        worker = held.worker
        self._take_back(worker)
        self._free(held)
        worker.lease = None
        if worker.dedicated or worker.retire:
            self.start_soon(self._retire, worker)
        elif worker.worker_id in self.workers:
            self.idle.append(worker)
        self._report_soon()
        self._dispatch()

    async def _retire(self, worker: _Worker) -> None:
        """Stop a worker process (it hosted an actor, or its job ended); it may be gone already."""
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
        cpus = self.leases[worker.lease].shape.get("CPU", 0)
        if cpus:
            worker.lent = cpus
            self.ledger.free["CPU"] += cpus
            self._report_soon()
            self._dispatch()

    def worker_unblocked(self, worker_id: str) -> None:
        """The task runs again: it takes its CPUs back (the node may be over-full for a while)."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.lent:
            self._take_back(worker)
            self._report_soon()

    def _take_back(self, worker: _Worker) -> None:
        if worker.lent:
            self.ledger.free["CPU"] -= worker.lent
            worker.lent = 0

    def _grant(self, worker: _Worker, req: _Request) -> Granted:
        """``worker`` runs ``req`` (whose resources are acquired), with GPUs of its own."""
        lease_id = next(self._lease_ids)
        worker.lease = lease_id
        worker.dedicated = req.actor_id is not None
        if worker.job != req.job:
            self._assign(worker, req.job)
        lease = self.leases[lease_id] = _Lease(worker, req)
        pools, units = self._gpus_of(req.shape)
        for pool in pools:  # (none without GPUs)
            lease.gpus = pool.hold(units)
            if lease.gpus is not None:
                break
        return Granted(lease_id, worker.worker_id, worker.executor, worker.pid, self.node_id,
                       lease.gpus.ids if lease.gpus is not None else ())

    def _fits(self, shape: dict[str, int]) -> bool:
        """Whether ``shape`` fits what is free here now, down to which GPUs."""
        if not self.ledger.fits(shape):
            return False
        pools, units = self._gpus_of(shape)
        return not units or any(pool.pick(units) is not None for pool in pools)

    def _gpus_of(self, shape: dict[str, int]) -> tuple[list[Instances], int]:
        """Where a lease of ``shape`` takes its GPUs from (the node's, or in a placement group
        its bundle's; bundle index -1: any of the group's here), and how many units."""
        units = shape.get("GPU", 0)
        if units:
            return [self.gpus], units
        for name, amount in shape.items():
            if name.startswith("GPU_group_"):
                pg_id, index = group_of(shape) or ("", -1)
                return [pool for (pg, i), (pool, _) in self.bundle_gpus.items()
                        if pg == pg_id and index in (-1, i)], amount
        return [], 0

    def _free(self, lease: _Lease) -> None:
        """A lease's resources (and GPUs) are free again."""
        self.ledger.release(lease.shape)
        if lease.gpus is not None:
            lease.gpus.release()

    def _take_idle(self, job: str, env: str | None) -> _Worker | None:
        """An idle worker for ``job`` in runtime_env ``env``: one that ran its code before,
        else a fresh one."""
        fresh = None
        for i in range(len(self.idle) - 1, -1, -1):
            w = self.idle[i]
            if w.env != env:
                continue
            if w.job == job:
                return self.idle.pop(i)
            if w.job is None and fresh is None:
                fresh = i
        return self.idle.pop(fresh) if fresh is not None else None

    def _assign(self, worker: _Worker, job: str) -> None:
        """A fresh worker starts running ``job``'s code: it gets the job's namespace, import
        path and where its output goes. (It arrives before the first task: the executor
        waits for it otherwise.)"""
        config = self.jobs.get(job, {})
        worker.job = job
        public = {k: v for k, v in config.items() if k in ("namespace", "sys_path", "cwd")}
        env = self.envs.get(worker.env) if worker.env is not None else None
        if env is not None:  # its runtime_env says where it runs and what it imports first
            if env.get("working_dir"):
                public.pop("cwd", None)
            if env.get("pip") or env.get("uv"):  # its virtualenv's packages before the driver's
                public["sys_path"] = renvs.without_parent_site(public.get("sys_path", []))
        worker.executor.assign_job.try_tell(job, public)  # type: ignore[union-attr]
        sink = None if self.echo_output or not config.get("log_to_driver", True) else config.get("driver")
        worker.proc.set_job.try_tell(job, sink)

    async def _fetch_job(self, job: str) -> None:
        config: dict[str, Any] = {}
        if self.control is not None:
            try:
                config = await self.control.job_info.ask(job) or {}
            except RayError:
                pass
        self.jobs.setdefault(job, config)

    async def _dispatch_soon(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        """Grant what fits to idle workers of the right job; start workers for what fits but
        has none (as many as the free resources can run at once, not one per request)."""
        granted = False
        for waiter in list(self.queue):
            if not self.idle:
                break
            req = waiter.data
            if not self._fits(req.shape):
                continue
            worker = self._take_idle(req.job, req.env)
            if worker is None:
                continue
            self.ledger.acquire(req.shape)
            self.queue.remove(waiter)
            if waiter.hand(self._grant(worker, req)):
                granted = True
            else:  # it gave up meanwhile (cancelled): the lease goes back
                self.release(worker.lease)  # type: ignore[arg-type]
        if granted:
            self._report_soon()
        wanting: dict[str | None, int] = {}  # by runtime_env
        spare = dict(self.ledger.free)
        renv_of: dict[str | None, Any] = {}
        for waiter in self.queue:
            req = waiter.data
            if _fits(spare, req.shape):
                for k, v in req.shape.items():
                    spare[k] -= v
                env = req.env
                wanting[env] = wanting.get(env, 0) + 1
                renv_of[env] = req.renv
        for env, n in wanting.items():
            for _ in range(n - self.starting_in.get(env, 0)):
                self.start_soon(self._start_worker, renv_of[env])
        self._trim_idle(sum(wanting.values()))

    def _trim_idle(self, wanting: int) -> None:
        """Idle workers of other jobs give way once the pool holds more processes than the
        node has CPUs to run (a new job must not wait on another's idle workers forever)."""
        limit = max(int(self.ledger.total.get("CPU", 0) // 10_000), 1)
        excess = len(self.idle) + self.starting - limit
        if wanting and excess > 0:
            for w in [w for w in self.idle if w.job is not None or w.env is not None][:excess]:
                self.idle.remove(w)
                self.start_soon(self._retire, w)

    def _unschedulable(self, shape: dict[str, int]) -> str:
        want = from_units(shape)
        nodes = {self.node_id: self.ledger.total, **{n: e[1] for n, e in self.view.items()}}
        biggest = max(nodes.values(), key=lambda t: sum(min(t.get(k, 0), v) for k, v in shape.items()))
        missing = {k: v for k, v in want.items() if from_units(biggest).get(k, 0) < v}
        where = "this node has" if len(nodes) == 1 else f"the best of the {len(nodes)} nodes has"
        return (f"a task or actor needs {want} but no node can ever provide {missing}: {where} "
                f"{from_units(biggest)}. Lower the request, or start tray with more "
                f"(e.g. tray.init(num_cpus=..., resources={{...}}), or tray start --resources ...).")

    # ----------------------------------------------------------------- owners

    def _watch_owner(self, owner: ActorRef, uid: str) -> None:
        if owner not in self.owners:
            self.owners[owner] = uid
            self.monitor(owner)

    def _owner_died(self, uid: str) -> None:
        """A process that held leases died: the leases it held (for tasks it submitted, and
        for the actors it created, which share its fate unless detached) come back, its
        waiting requests go, and so do the objects it owned or was writing here."""
        if uid in self.dead_owners:
            return
        self.dead_owners[uid] = None
        if len(self.dead_owners) > 1000:
            del self.dead_owners[next(iter(self.dead_owners))]
        for waiter in [w for w in self.queue if w.data.owner == uid]:  # first: releases below dispatch
            self.queue.remove(waiter)
            waiter.fail(RayError(f"the process {uid} that asked for this lease died"))
        for lease_id in [lid for lid, held in self.leases.items() if held.owner == uid and not held.detached]:
            self.release(lease_id)
        store = self.system.lookup(STORE_NAME)
        if store is not None:
            store.process_died.tell_nowait(uid)

    def job_finished(self, job: str, driver: str) -> None:
        """A job's driver is gone: its workers go (idle ones now, busy ones when released)."""
        self._owner_died(driver)
        self.jobs.pop(job, None)
        for w in list(self.workers.values()):
            if w.job != job or (w.dedicated and w.lease is not None and self.leases[w.lease].detached):
                continue
            if w in self.idle:
                self.idle.remove(w)
                self.start_soon(self._retire, w)
            else:
                w.retire = True

    # ----------------------------------------------------------------- workers

    async def _start_worker(self, renv: tuple[str, dict[str, Any]] | None = None) -> None:
        """Start a worker process, in runtime_env ``renv`` (prepared first) if given."""
        worker_id = f"w{next(self._worker_ids)}"
        env = renv[0] if renv is not None else None
        self.starting += 1
        self.starting_in[env] = self.starting_in.get(env, 0) + 1
        try:
            setup = None if renv is None else (await self._prepare(renv), renv[1])
            proc = await self.pool.start_child.ask(worker_id, setup)
        except RuntimeEnvSetupError as exc:
            self._not_starting(env)
            self._env_setup_failed(env, str(exc))  # type: ignore[arg-type]
            return
        except Exception:
            self._not_starting(env)
            log.exception("could not start a worker process")
            return
        worker = _Worker(worker_id, proc, env)
        self.workers[worker_id] = worker
        self.by_proc[proc] = worker
        self.monitor(proc)

    def _not_starting(self, env: str | None) -> None:
        self.starting -= 1
        self.starting_in[env] -= 1
        if not self.starting_in[env] and env is not None:
            del self.starting_in[env]

    # ---------------------------------------------------------- runtime envs

    def _check_env(self, renv: tuple[str, dict[str, Any]]) -> None:
        """Remember the env a request carries; raise at once if its setup failed lately."""
        key, env = renv
        self.envs.setdefault(key, env)
        failed = self.env_failed.get(key)
        if failed is not None:
            if trio.current_time() - failed[1] < ENV_RETRY_AFTER_S:
                raise RuntimeEnvSetupError(failed[0])
            del self.env_failed[key]  # time to try again (a package index may be back)

    async def prepare_env(self, renv: tuple[str, dict[str, Any]]) -> None:
        """Prepare a job's runtime_env ahead of its tasks (Ray's ``eager_install``); a failure
        is kept for the requests that come for it."""
        try:
            self._check_env(renv)
            await self._prepare(renv)
        except RuntimeEnvSetupError as exc:
            self._env_setup_failed(renv[0], str(exc))

    @property
    def resources_dir(self) -> str:
        """Where this node keeps prepared runtime envs: its session directory's
        ``runtime_resources`` (shared with the jobs the head runs)."""
        if self.log_dir is not None:
            return os.path.join(os.path.dirname(self.log_dir), "runtime_resources")
        return os.path.join(tempfile.gettempdir(), f"tray-runtime-resources-{os.getuid()}")

    async def _prepare(self, renv: tuple[str, dict[str, Any]]) -> renvs.Prepared:
        """``renv`` ready on this node: packages fetched and unpacked, its virtualenv built,
        once (the setup runs in a thread: pip may take minutes), within its setup timeout."""
        key, env = renv
        done = self.prepared.get(key)
        if done is not None:
            return done
        async with self.env_locks.setdefault(key, trio.Lock()):
            if key in self.prepared:
                return self.prepared[key]
            self._check_env(renv)  # it failed while this one waited
            token = trio.lowlevel.current_trio_token()

            def fetch(name: str) -> bytes | None:
                return trio.from_thread.run(self._fetch_package, name, trio_token=token)

            timeout = renvs.setup_timeout(env)  # kept by the setup itself; this is a backstop
            stop = threading.Event()  # ends its install (and the install's processes) if this ends first
            try:
                with trio.fail_after(math.inf if timeout is None else timeout + SETUP_GRACE_S):
                    prepared = await trio.to_thread.run_sync(
                        functools.partial(renvs.prepare, env, self.resources_dir, fetch, stop),
                        abandon_on_cancel=True)
            except trio.TooSlowError:
                raise RuntimeEnvSetupError(f"runtime_env setup took over its config.setup_timeout_seconds "
                                           f"({timeout} s)") from None
            except RuntimeEnvSetupError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to set it up is the env's error, said
                raise RuntimeEnvSetupError(f"runtime_env setup failed: {type(exc).__name__}: {exc}") from None
            finally:
                stop.set()
            self.prepared[key] = prepared
            return prepared

    async def _fetch_package(self, name: str) -> bytes | None:
        await self._joined.wait()
        return await self.control.kv_get.ask(renvs.PKG_NAMESPACE, name)  # type: ignore[union-attr]

    def _env_worker_died_starting(self, key: str, why: str) -> None:
        """A worker of env ``key`` died before it could run anything: after a few in a row
        (its packages break tray's own imports, say) the env fails, rather than the node
        starting workers for its tasks forever."""
        deaths = self.env_start_deaths[key] = self.env_start_deaths.get(key, 0) + 1
        if deaths >= ENV_START_ATTEMPTS:
            del self.env_start_deaths[key]
            self._env_setup_failed(key, f"runtime_env: {deaths} workers started in it died before they could "
                                        f"run a task; the last: {why}")

    def _env_setup_failed(self, key: str, error: str) -> None:
        """The requests waiting for ``key`` fail with the setup's error; so do new ones, a while."""
        self.env_failed[key] = (error, trio.current_time())
        for waiter in [w for w in self.queue if w.data.env == key]:
            self.queue.remove(waiter)
            waiter.fail(RuntimeEnvSetupError(error))

    async def register_worker(self, worker_id: str, executor: ActorRef, pid: int) -> None:
        """A started worker process is ready to run tasks."""
        worker = self.workers.get(worker_id)
        if worker is None:
            raise KeyError(f"unknown worker {worker_id}")
        self._not_starting(worker.env)
        if worker.env is not None:
            self.env_start_deaths.pop(worker.env, None)
        worker.executor, worker.pid = executor, pid
        worker.proc.registered.try_tell()
        self.idle.append(worker)
        self._dispatch()

    async def death_of(self, worker_id: str) -> str:
        """Why a worker process died (exit code, signal or who killed it, and its last stderr
        lines), once the node has seen it go."""
        while worker_id in self.workers:
            event = self.deaths_seen.setdefault(worker_id, trio.Event())
            await event.wait()
        return self.deaths.get(worker_id, "unknown")

    async def death_of_executor(self, executor_id: str) -> str | None:
        """``death_of`` the worker whose executor actor is ``executor_id`` (what an actor's
        callers know it by); None if no worker of this node had it."""
        worker_id = self.dead_executors.get(executor_id) or next(
            (w.worker_id for w in self.workers.values() if w.executor is not None
             and w.executor.actor_id == executor_id), None)
        return None if worker_id is None else await self.death_of(worker_id)

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        uid = self.owners.pop(ref, None)
        if uid is not None:
            self._owner_died(uid)
        worker = self.by_proc.pop(ref, None)
        if worker is None:
            return
        self.workers.pop(worker.worker_id, None)
        self.deaths[worker.worker_id] = death_text(reason, self.node_id, self.kill_reasons.pop(worker.worker_id, None))
        if len(self.deaths) > 1000:
            del self.deaths[next(iter(self.deaths))]
        if worker.executor is not None:
            self.dead_executors[worker.executor.actor_id] = worker.worker_id
            if len(self.dead_executors) > 1000:
                del self.dead_executors[next(iter(self.dead_executors))]
        seen = self.deaths_seen.pop(worker.worker_id, None)
        if seen is not None:
            seen.set()
        if worker.executor is None:
            self._not_starting(worker.env)
            if worker.env is not None:
                self._env_worker_died_starting(worker.env, self.deaths[worker.worker_id])
        else:
            self._owner_died(worker.executor.actor_id.partition(":")[0])
        if worker in self.idle:
            self.idle.remove(worker)
        if worker.lease is not None:
            held = self.leases.pop(worker.lease, None)
            if held is not None:
                self._take_back(worker)
                self._free(held)
                self._report_soon()
        self._dispatch()

    async def kill_worker(self, worker_id: str, reason: str | None = None) -> None:
        """SIGKILL a worker (force-cancel; the memory monitor, which gives the ``reason`` that
        ``death_of`` then reports); its leases fail, its resources come back."""
        worker = self.workers.get(worker_id)
        if worker is not None:
            if reason is not None:  # before the kill: its down notice may come before the reply
                self.kill_reasons[worker_id] = reason
            await worker.proc.kill_process.ask()

    def kill_lease_process(self, lease_id: int) -> None:
        """``tray.kill(actor, no_restart=False)``: end the process holding the lease; its
        creator may restart the actor."""
        held = self.leases.get(lease_id)
        if held is not None:
            held.worker.proc.kill_process.try_tell()

    # --------------------------------------------------------- placement groups

    def reserve_bundles(self, pg_id: str, bundles: list[tuple[int, dict[str, int]]]) -> tuple | None:
        """Set aside a placement group's bundles: their base resources become the group's
        (``CPU`` -> ``CPU_group_{i}_{pg}`` and ``CPU_group_{pg}``). Returns this node's new
        ``(total, free)``, or None if they do not fit."""
        from ._placement import bundle_resources

        need: dict[str, int] = {}
        for _i, shape in bundles:
            for k, v in shape.items():
                need[k] = need.get(k, 0) + v
        if pg_id in self.bundles or not self.ledger.acquire(need):
            return None
        taken: dict[tuple[str, int], tuple[Instances, GpuHold]] = {}
        for index, shape in bundles:  # each bundle's GPUs are its own, one by one
            units = shape.get("GPU", 0)
            if not units:
                continue
            hold = self.gpus.hold(units)
            if hold is None:  # enough GPU in all, but not on whole GPUs
                for _, got in taken.values():
                    got.release()
                self.ledger.release(need)
                return None
            taken[(pg_id, index)] = (Instances({i: min(units, UNIT) for i in hold.ids}), hold)
        self.bundle_gpus.update(taken)
        held = self.bundles[pg_id] = []
        for index, shape in bundles:
            gained = bundle_resources(pg_id, index, shape)
            self.ledger.add(gained)
            held.append((index, shape, gained))
        self._report_soon(totals=True)
        self._dispatch()
        return dict(self.ledger.total), dict(self.ledger.free)

    def return_bundles(self, pg_id: str) -> None:
        """The group is removed (or rescheduled): workers running in it are killed, its
        resources become the node's again."""
        held = self.bundles.pop(pg_id, None)
        if held is None:
            return
        def in_group(shape: dict[str, int]) -> bool:  # any of its bundles, or a given one
            return (group_of(shape) or ("",))[0] == pg_id

        for lease_id in [lid for lid, lease in self.leases.items() if in_group(lease.shape)]:
            worker = self.leases[lease_id].worker
            worker.retire = True  # never idle again: a request waiting now must not get a dying worker
            self.release(lease_id)
            worker.proc.kill_process.try_tell()
        for waiter in [w for w in self.queue if in_group(w.data.shape)]:
            self.queue.remove(waiter)
            waiter.fail(TaskUnschedulableError(f"placement group {pg_id} was removed before this task or actor "
                                               f"could run in it"))
        for index, shape, gained in held:
            self.ledger.remove(gained)
            self.ledger.release(shape)
            gpus = self.bundle_gpus.pop((pg_id, index), None)
            if gpus is not None:
                gpus[1].release()
        self._report_soon(totals=True)
        self._dispatch()

    # ------------------------------------------------------------------- views

    def hosted(self) -> dict[str, tuple[ActorRef, int, int]]:
        """The actors this node runs: ``actor_id -> (executor, lease_id, pid)``."""
        return {lease.actor_id: (lease.worker.executor, lid, lease.worker.pid)  # type: ignore[misc]
                for lid, lease in self.leases.items() if lease.actor_id is not None}

    def resources(self) -> tuple[dict[str, float], dict[str, float]]:
        """(total, available) resources of this node."""
        return from_units(self.ledger.total), from_units(self.ledger.free)

    def log_files(self) -> list[dict[str, Any]]:
        """This node's worker log files (``tray logs``): name, worker id, pid, stream (out/err),
        size, and whether the worker is alive and which actor it hosts."""
        live = {w.pid: w for w in self.workers.values() if w.pid}
        rows = list_logs(self.log_dir)
        for row in rows:
            w = live.get(row["pid"])
            lease = self.leases.get(w.lease) if w is not None and w.lease is not None else None
            row.update(node_id=self.node_id, alive=w is not None and w.worker_id == row["worker_id"],
                       actor_id=lease.actor_id if lease is not None else None)
        return rows

    def read_log(self, name: str, offset: int = 0, max_bytes: int = MAX_READ) -> tuple[bytes, int, int]:
        """``(data, end_offset, size)`` of this node's log file ``name`` from ``offset``
        (negative: from its end), so ``tray logs`` reads it from any machine."""
        return read_log(self.log_dir, name, offset, max_bytes)

    def processes(self) -> list[dict[str, Any]]:
        """The node's worker processes: id, pid, the executor that answers for them, what runs."""
        rows = []
        for w in self.workers.values():
            if w.executor is None:
                continue
            lease = self.leases.get(w.lease) if w.lease is not None else None
            rows.append({"worker_id": w.worker_id, "pid": w.pid, "executor": w.executor, "job_id": w.job,
                         "actor_id": lease.actor_id if lease is not None else None, "leased": lease is not None,
                         "leased_to": lease.owner if lease is not None else None, "node_id": self.node_id})
        return rows
