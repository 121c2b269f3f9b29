"""An owner's leases: workers granted by the nodes for tasks (and actors) of one shape
(and runtime_env: a worker started in one serves only tasks of the same).

A few lease requests per shape are in flight at the scheduler, following its spillbacks
to other nodes; a lease that comes back is handed straight to the next queued task of the
same shape, pipelined when more tasks wait than leases can come; an idle lease lingers a
moment for the next task before it goes back. A caller's thread may take an idle lease
itself, to send a task down its worker's lane (:mod:`._lanes`), and put it back: the idle
leases are kept under a lock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

import trio

from ..actors import ActorRef
from ..cluster._grants import Granted
from ..exceptions import ActorDiedError, NodeDiedError, RayError

if TYPE_CHECKING:
    from ._notes import Notes
    from ._runtime import Runtime

MAX_LEASE_REQUESTS = 10  # per shape, in flight at the scheduler at once
PIPELINE = 8  # tasks in flight per leased worker, once more tasks wait than leases can come
LINGER_S = 0.002  # an idle lease is kept this long for the next task before it goes back
T = TypeVar("T")


class Lease:
    """A worker granted to this owner for tasks of one shape, until it is given back."""

    __slots__ = ("lease_id", "worker_id", "executor", "pid", "node_id", "gpus", "scheduler", "inflight", "dead",
                 "idle_at")

    def __init__(self, scheduler: ActorRef, grant: Granted) -> None:
        self.lease_id, self.worker_id, self.executor, self.pid, self.node_id, self.gpus = grant
        self.scheduler = scheduler  # the node's, where it goes back
        self.inflight = 0  # tasks sent to it and not yet answered
        self.dead = False  # its worker died: never reused, never returned
        self.idle_at = 0.0  # when its last task ended (perf_counter; while it lingers in its pool)


class ShapePool:
    """Tasks of one shape (scheduling strategy and runtime_env) waiting for a lease, and the
    requests out for them."""

    __slots__ = ("shape", "strategy", "renv", "waiters", "requests", "idle", "lingering", "puts")

    def __init__(self, shape: dict[str, int], strategy: tuple | None, renv: tuple | None) -> None:
        self.shape, self.strategy, self.renv = shape, strategy, renv
        self.waiters: deque[Ticket] = deque()  # tasks waiting for a lease, in line
        self.requests = 0
        # Leases with nothing to run, kept LINGER_S for the next task (a loop of tasks each
        # waited for would otherwise return its worker and ask the node again every time).
        self.idle: deque[Lease] = deque()
        self.lingering = False  # a task gives back the idle leases that outstay LINGER_S
        self.puts = 0  # leases that came back idle, ever (the lingering task sees whether any did)



class Ticket:
    """A task's place in its shape's line of waiters, taken when it was submitted (see
    :meth:`Leases.line_up`); :meth:`wait` gives the lease once it comes."""

    __slots__ = ("leases", "pool", "outcome", "event", "gone")

    def __init__(self, leases: Leases, pool: ShapePool) -> None:
        self.leases, self.pool = leases, pool
        self.outcome: Lease | BaseException | None = None
        self.event = trio.Event()
        self.gone = False  # its task stopped waiting: a lease handed now is refused

    def hand(self, lease: Lease) -> bool:
        """Give the task its lease; False if it stopped waiting (the lease is the giver's still)."""
        return self._settle(lease)

    def fail(self, exc: BaseException) -> bool:
        return self._settle(exc)

    def _settle(self, outcome: Lease | BaseException) -> bool:
        if self.gone:
            return False
        self.outcome = outcome
        self.event.set()
        return True

    async def wait(self) -> Lease:
        try:
            await self.event.wait()
        except BaseException:
            self.leave()
            raise
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome

    def leave(self) -> None:
        """Stop waiting: out of the line, and a lease already handed is passed on or returned."""
        if self.gone:
            return
        self.gone = True
        if self in self.pool.waiters:
            self.pool.waiters.remove(self)
        if isinstance(self.outcome, Lease):
            pool = self.pool
            self.leases.give_back(pool.shape, pool.strategy, self.outcome, pool.renv)


class Leases:
    """The leases of one process's owner, by shape (and scheduling strategy)."""

    def __init__(self, rt: Runtime, nursery: trio.Nursery, note: Notes) -> None:
        self.rt, self.nursery, self.note = rt, nursery, note
        self.pools: dict[tuple, ShapePool] = {}
        self.lock = threading.Lock()  # over the pools' idle leases (and lingering), which threads take too

    def line_up(self, shape: dict[str, int], strategy: tuple | None, renv: tuple | None = None) -> Ticket:
        """Take a task's place in its shape's line now (sync: tasks submitted in one order are
        served in that order, whatever order trio then runs their coroutines in); the lease
        comes from the ticket's ``wait``."""
        pool = self._pool(shape, strategy, renv)
        ticket = Ticket(self, pool)
        lease = self._idle_lease(pool)
        if lease is not None:
            ticket.hand(lease)
        else:
            pool.waiters.append(ticket)
            self._request_leases(pool)
        return ticket

    def _pool(self, shape: dict[str, int], strategy: tuple | None, renv: tuple | None) -> ShapePool:
        key = _key(shape, strategy, renv)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = ShapePool(shape, strategy, renv)
        return pool

    def pool_for(self, shape: dict[str, int], strategy: tuple | None, renv: tuple | None) -> ShapePool | None:
        return self.pools.get(_key(shape, strategy, renv))

    def _idle_lease(self, pool: ShapePool) -> Lease | None:
        while True:
            with self.lock:
                if not pool.idle:
                    return None
                lease = pool.idle.pop()
                if lease.executor.alive:
                    lease.inflight += 1
                    return lease
            self.note(lease.scheduler.release, lease.lease_id)  # its worker died idle: the node knows

    def take_idle(self, pool: ShapePool, usable: Mapping[str, T]) -> tuple[Lease | None, T | None]:
        """Any thread: an idle lease of ``pool`` whose worker is in ``usable`` (by executor
        id), taken out of it (the newest first) to run one task, and what ``usable`` has for
        it; :meth:`put_back` the lease when done."""
        with self.lock:
            for lease in reversed(pool.idle):
                found = usable.get(lease.executor.actor_id)
                if found is not None and lease.executor.alive:
                    pool.idle.remove(lease)
                    lease.inflight += 1
                    return lease, found
        return None, None

    def put_back(self, pool: ShapePool, lease: Lease) -> None:
        """Any thread: a task taken with :meth:`take_idle` is done with ``lease``; the loop
        gives it back if tasks wait for one (or its worker died)."""
        if pool.waiters or lease.dead:
            self.rt.soon_unless_closed(self.give_back, pool.shape, pool.strategy, lease, pool.renv)
            return
        lease.inflight -= 1
        self._linger_idle(pool, lease)

    def _request_leases(self, pool: ShapePool) -> None:
        while pool.requests < min(len(pool.waiters), MAX_LEASE_REQUESTS):
            pool.requests += 1
            self.nursery.start_soon(self._request_one, pool)

    async def request(self, shape: dict[str, int], strategy: tuple | None, actor_id: str | None = None,
                      detached: bool = False, renv: tuple | None = None) -> Lease:
        """Ask our node for a worker (in runtime_env ``renv``: ``(key, env)``, None for the
        default); follow its spillbacks to the node that has room. A node we were sent to
        that died meanwhile sends us back to ours (its view catches up)."""
        local = scheduler = self.rt.scheduler
        hops = lost = 0
        while True:
            try:
                reply = await scheduler.lease.ask(shape, self.rt.owner_ref, self.rt.job_id, actor_id, detached,
                                                  strategy, hops, renv)
            except ActorDiedError as exc:
                if scheduler == local:
                    raise NodeDiedError(f"this process's node ({self.rt.node_address or 'local'}) is gone: {exc}; "
                                        f"start tray again (tray.shutdown(), then tray.init(...))") from None
                lost += 1
                if lost > MAX_LEASE_REQUESTS:
                    raise
                await trio.sleep(0.05 * lost)
                scheduler, hops = local, 0
                continue
            if type(reply) is Granted:
                return Lease(scheduler, reply)
            scheduler, hops = reply.scheduler, hops + 1

    async def _request_one(self, pool: ShapePool) -> None:
        try:
            lease = await self.request(pool.shape, pool.strategy, renv=pool.renv)
        except RayError as exc:  # unschedulable, or the node is gone: every waiter fails
            pool.requests -= 1
            while pool.waiters:
                pool.waiters.popleft().fail(exc)
            return
        pool.requests -= 1
        self.hand_out(pool, lease)
        if lease.inflight == 0:
            self.note(lease.scheduler.release, lease.lease_id)
        self._request_leases(pool)

    def hand_out(self, pool: ShapePool, lease: Lease) -> None:
        """Give ``lease`` to waiting tasks: one if it is idle, more (pipelined, so the worker
        never waits for a round trip) while more tasks wait than lease requests are out."""
        waiters = pool.waiters
        while waiters and (lease.inflight == 0 or (lease.inflight < PIPELINE and len(waiters) > pool.requests)):
            if waiters.popleft().hand(lease):
                lease.inflight += 1

    def give_back(self, shape: dict[str, int], strategy: tuple | None, lease: Lease, renv: tuple | None = None) -> None:
        """A task is done with ``lease``: pass it on to a waiting task, or return it when idle."""
        lease.inflight -= 1
        if lease.dead:
            return
        pool = self.pools.get(_key(shape, strategy, renv))
        if pool is not None:
            self.hand_out(pool, lease)
            if lease.inflight == 0 and strategy != ("spread",):  # SPREAD asks the node each time
                self._linger_idle(pool, lease)
                return
        if lease.inflight == 0:
            self.note(lease.scheduler.release, lease.lease_id)

    def _linger_idle(self, pool: ShapePool, lease: Lease) -> None:
        """Any thread: ``lease`` waits in ``pool`` for the next task, LINGER_S at most."""
        with self.lock:
            lease.idle_at = perf_counter()
            pool.idle.append(lease)
            pool.puts += 1
            start, pool.lingering = not pool.lingering, True
        if start:
            if self.rt.in_loop():
                self.nursery.start_soon(self._linger, pool)
            else:
                self.rt.soon_unless_closed(self.nursery.start_soon, self._linger, pool)

    async def _linger(self, pool: ShapePool) -> None:
        """Give back the pool's idle leases once they have been idle LINGER_S; ends once no
        lease has come back for LINGER_S (a thread that takes and puts back a lease for
        each task would otherwise start it again for nearly every one)."""
        seen = -1
        try:
            while True:
                with self.lock:
                    if not pool.idle and pool.puts == seen:
                        pool.lingering = False
                        return
                    seen = pool.puts
                    due = (pool.idle[0].idle_at if pool.idle else perf_counter()) + LINGER_S
                await trio.sleep(max(0.0, due - perf_counter()))
                self._release_idle(pool, perf_counter() - LINGER_S)
        except BaseException:
            pool.lingering = False
            raise

    def _release_idle(self, pool: ShapePool, idle_since: float = math.inf) -> None:
        with self.lock:
            gone = []
            while pool.idle and pool.idle[0].idle_at <= idle_since:
                gone.append(pool.idle.popleft())
        for lease in gone:
            self.note(lease.scheduler.release, lease.lease_id)

    def release_idle(self) -> None:
        """Give back every idle lease now: asked what is free, a node should count them."""
        for pool in self.pools.values():
            self._release_idle(pool)

    async def death_of(self, lease: Lease, lost: BaseException) -> str:
        """Why the leased worker died, as the node saw it (exit code, signal), if it says soon."""
        with trio.move_on_after(2.0):
            try:
                return await lease.scheduler.death_of.ask(lease.worker_id)
            except RayError:
                pass
        return str(lost)


def _key(shape: dict[str, int], strategy: tuple | None, renv: tuple | None) -> tuple:
    return frozenset(shape.items()), strategy, renv[0] if renv is not None else None
