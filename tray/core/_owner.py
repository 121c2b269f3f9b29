"""The owner: submits this process's tasks and actor calls, and serves the objects it owns.

Runs in the runtime's trio thread. Tasks wait here for their top-level ObjectRef
arguments, then for a lease on a worker of their resource shape (:mod:`._leases`).
A finished task is kept while its stored results are referenced, to run it again if
they are lost (lineage). The owner's other parts, each given its collaborators when
made: leases (:mod:`._leases`), waits for objects (:mod:`._waits`), actors and their calls
(:mod:`._actor_calls`), notes to other processes (:mod:`._notes`).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import trio

from ..actors import Actor, ActorRef
from ..cluster._memory import is_memory_kill, oom_retry_delay
from ..exceptions import (
    ActorDiedError,
    ObjectLostError,
    ObjectReconstructionFailedError,
    OutOfMemoryError,
    OwnerDiedError,
    RayError,
    TaskCancelledError,
    WorkerCrashedError,
)
from ..store import Stored
from ._actor_calls import ActorCalls
from ._leases import Leases, Ticket
from ._notes import Notes
from ._objects import FAILED, HANDLE, READY, describe
from ._tasklog import (
    NORMAL_TASK,
    PENDING_ACTOR,
    PENDING_ARGS_AVAIL,
    PENDING_NODE_ASSIGNMENT,
    SUBMITTED_TO_WORKER,
    TaskLog,
    dispatched,
    pack,
    record,
)
from ._waits import ObjectWaits

if TYPE_CHECKING:
    from ._generators import Stream
    from ._leases import Lease, ShapePool
    from ._runtime import Runtime
    from ._specs import Args, TaskSpec

log = logging.getLogger("tray.core")

HANDLE_GRACE_S = 0.3  # how long an actor whose last handle went waits for a borrow note on its way

class Owner:
    """Tasks and lineage of this process, composed with its other parts: ``leases``,
    ``waits`` (objects waited for and fetched), ``calls`` (actors and their calls)."""

    def __init__(self, rt: Runtime, nursery: trio.Nursery) -> None:
        self.rt = rt
        self.table = rt.table
        self.nursery = nursery
        self.note = Notes(nursery)
        self.waits = ObjectWaits(rt.table, nursery)
        self.leases = Leases(rt, nursery, self.note)
        self.running: dict[str, Lease] = {}  # task id -> the lease it runs on
        self.live: set[str] = set()  # tasks submitted and not yet done, by id
        self.cancelled: set[str] = set()
        self.children: dict[str, list[str]] = {}  # a running task's id -> the tasks it submitted
        self.streams: dict[str, Stream] = {}  # streaming tasks in flight, by task id
        self.tasks = TaskLog(lambda: rt.job_id)  # what we submitted, for tray.util.state.list_tasks
        self.lineage: dict[str, TaskSpec] = {}  # a stored result of ours -> the task that makes it again
        self._kept: dict[str, int] = {}  # a task kept for its results -> how many of them are still held
        self._remaking: dict[str, trio.Event] = {}  # tasks running again to re-make lost results
        self.calls = ActorCalls(rt, rt.table, nursery, self.note, self.tasks, self.waits, self.leases)
        rt.table.on_handles_unused = self._handles_unused

    # ---------------------------------------------------------- actor handles

    def _handles_unused(self, oids: list[str]) -> None:
        """Any thread: no process uses these actor-handle tokens of ours now (``_objects``)."""
        self.rt.soon_unless_closed(self._start_grace, oids)

    def _start_grace(self, oids: list[str]) -> None:
        try:
            self.nursery.start_soon(self._end_actors_unused, oids)
        except RuntimeError:  # the loop is closing: the actors go with it
            pass

    async def _end_actors_unused(self, oids: list[str]) -> None:
        """After a grace (a process that was just handed a copy may not have said so yet,
        its note racing the reply of the call that carried it), end each actor no handle
        of which came back: once its calls already made are done (Ray's rule)."""
        await trio.sleep(HANDLE_GRACE_S)
        for oid in oids:
            if self.table.end_unused_handle(oid):
                self.calls.handle_dropped(oid[len(HANDLE):])

    async def close(self) -> None:
        self.nursery.cancel_scope.cancel()
        self.calls.lanes.close()

    # ------------------------------------------------------------------ tasks

    def submit_task(self, spec: TaskSpec, parent: str | None) -> None:
        self.table.collect()
        self._admit(spec, parent, PENDING_ARGS_AVAIL if spec.deps else PENDING_NODE_ASSIGNMENT)
        # A task with nothing to wait for takes its place in line now, so that tasks of one
        # shape start in the order they were submitted (trio runs new coroutines in any order).
        ticket = None if spec.deps else self.leases.line_up(spec.shape, spec.strategy, spec.renv)
        self.nursery.start_soon(self._run_task, spec, ticket)

    async def _run_task(self, spec: TaskSpec, ticket: Ticket | None = None,
                        tried: tuple[Lease, str, Any] | None = None) -> None:
        """Run ``spec`` to its end, retrying as its options say; ``tried``: the lease and
        outcome of its first attempt, made on a lane (:meth:`lane_answered`)."""
        rec = self.tasks.live[spec]
        try:
            err = await self.waits.wait_deps(spec.deps)
            if err is not None:
                self._task_failed(spec, err)
                return
            attempts = oom_kills = 0
            while True:
                if tried is not None:
                    (lease, kind, payload), tried = tried, None
                    self.running.pop(spec.task_id, None)
                else:
                    if spec.task_id in self.cancelled:
                        self._task_failed(spec, _cancelled(spec))
                        return
                    rec["state"], rec["attempt_number"] = PENDING_NODE_ASSIGNMENT, attempts
                    try:
                        # its place in line from submission, else (a retry, or it waited for its arguments) a new one
                        place, ticket = ticket or self.leases.line_up(spec.shape, spec.strategy, spec.renv), None
                        lease = await place.wait()
                    except RayError as exc:
                        self._task_failed(spec, exc)
                        return
                    self.running[spec.task_id] = lease
                    dispatched(rec, lease.node_id, lease.worker_id, lease.pid)
                    pinned = self._pin_stored(spec.args)
                    try:
                        kind, payload = await lease.executor.run.ask(spec.wire(self.rt.owner_ref, lease.gpus))
                    except ActorDiedError as exc:
                        kind, payload = "crashed", exc
                    finally:
                        self.running.pop(spec.task_id, None)
                        if pinned:
                            self.table.store.unpin(pinned)  # type: ignore[union-attr]
                if kind == "crashed":
                    self.calls.lanes.lost(lease.executor.actor_id)
                    lease.dead = True
                    lease.inflight -= 1
                    payload = await self.leases.death_of(lease, payload)
                    if spec.task_id in self.cancelled:  # force-cancelled: its worker was killed on purpose
                        self._task_failed(spec, _cancelled(spec))
                        return
                    if is_memory_kill(payload):  # Ray: retried, with backoff, unless max_retries=0; no budget spent
                        if spec.max_retries == 0:
                            self._task_failed(spec, OutOfMemoryError(
                                f"task {spec.name} is not retried (max_retries=0): its worker was {payload}"))
                            return
                        oom_kills += 1
                        log.info("the worker of task %s was %s; retrying (%d)", spec.name, payload, oom_kills)
                        await trio.sleep(oom_retry_delay(oom_kills))
                        continue
                    attempts += 1
                    if spec.max_retries != -1 and attempts > spec.max_retries:
                        self._task_failed(spec, WorkerCrashedError(
                            f"the worker running task {spec.name} died; retried {attempts - 1} time(s) "
                            f"(max_retries={spec.max_retries}): {payload}"))
                        return
                    log.info("worker of task %s died; retrying (%d)", spec.name, attempts)
                    continue
                self.leases.give_back(spec.shape, spec.strategy, lease, spec.renv)
                if kind == "ok":
                    for oid, blob in zip(spec.return_ids, payload):  # noqa: B905 - hot path: one blob per return id
                        self.table.resolve(oid, blob)
                    return
                if kind == "streamed":  # its items travel apart from this reply: count them in
                    spec.stream.expect(*payload)  # type: ignore[union-attr]
                    if spec.stream.finished:  # type: ignore[union-attr]
                        self.streams.pop(spec.task_id, None)
                    return
                if kind == "cancelled":
                    self._task_failed(spec, _cancelled(spec))
                    return
                # kind == "error": the task raised
                attempts += 1
                if spec.should_retry(payload) and (spec.max_retries == -1 or attempts <= spec.max_retries):
                    log.info("task %s raised %r; retrying (%d)", spec.name, payload, attempts)
                    continue
                self._task_failed(spec, payload)
                return
        finally:
            if ticket is not None:  # it ended before using its place in line
                ticket.leave()
            self._ended(spec)

    def _admit(self, spec: TaskSpec, parent: str | None, state: str) -> dict[str, Any]:
        """``spec`` is live from now (a child of ``parent``, a task running in this worker),
        and listed in ``state``; its row."""
        self.live.add(spec.task_id)
        if parent is not None:
            self.children.setdefault(parent, []).append(spec.task_id)
        return self.tasks.add(spec, record(spec.task_id, spec.name, NORMAL_TASK, self.rt.job_id, None, parent,
                                           state))

    def _ended(self, spec: TaskSpec, inline: bool = False) -> None:
        """``spec`` is done (its refs resolved or failed): its arguments are let go unless it
        is kept for its results' lineage (``inline``: its first attempt's results are all
        inline, which need none), and its row is FINISHED unless it failed."""
        self.live.discard(spec.task_id)
        self.cancelled.discard(spec.task_id)
        if inline or not self._keep_lineage(spec):
            self.table.pin(spec.pinned, -1)
        self.tasks.end(spec)

    def task_on_lane(self, spec: TaskSpec, parent: str | None, lease: Lease) -> None:
        """The caller's thread: ``spec`` goes down the lane of ``lease``'s worker now, instead
        of being submitted (:mod:`._lanes`); it is live, and running there, as any task."""
        rec = self._admit(spec, parent, PENDING_NODE_ASSIGNMENT)
        dispatched(rec, lease.node_id, lease.worker_id, lease.pid)
        self.running[spec.task_id] = lease

    def lane_answered(self, spec: TaskSpec, pool: ShapePool, lease: Lease, kind: str, payload: Any) -> None:
        """A lane task's outcome (any thread): results all inline end it here; anything else
        (an error, a crash, results stored, cancelled) is handled by the loop as any task's."""
        if kind == "ok" and all(type(blob) is bytes for blob in payload):
            self.running.pop(spec.task_id, None)
            self.leases.put_back(pool, lease)
            for oid, blob in zip(spec.return_ids, payload):  # noqa: B905 - hot path: one blob per return id
                self.table.resolve(oid, blob)
            self._ended(spec, inline=True)
        elif self.rt.in_loop():
            self.nursery.start_soon(self._run_task, spec, None, (lease, kind, payload))
        else:
            self.rt.soon_unless_closed(self.nursery.start_soon, self._run_task, spec, None, (lease, kind, payload))

    def _pin_stored(self, args: Args) -> list[Stored]:
        """Keep the stored values a dispatched task reads in shared memory until it is done:
        new objects never push them out to disk (restores for readers may, as a last resort)."""
        stored = args.stored(self.table)
        if stored:
            self.table.store.pin(stored)  # type: ignore[union-attr]
        return stored

    # --------------------------------------------------------------- lineage

    def _keep_lineage(self, spec: TaskSpec) -> bool:
        """Keep a finished task (and its arguments) while its stored results are referenced:
        if a result's copy is lost with its node, running the task again re-makes it (Ray's
        lineage reconstruction, within max_retries). Inline results live here, in the
        owner: they are lost only with it."""
        if spec.remade:  # ran again: kept already (or let go by forget_lineage meanwhile)
            return True
        if spec.max_retries == 0 or spec.stream is not None:
            return False
        entries = self.table.entries
        stored = [oid for oid in spec.return_ids
                  if (e := entries.get(oid)) is not None and e.state == READY and type(e.blob) is Stored]
        if not stored:
            return False
        for oid in stored:
            self.lineage[oid] = spec
        self._kept[spec.task_id] = len(stored)
        return True

    def forget_lineage(self, oids: list[str]) -> None:
        """These results of ours were freed: a task none of whose results is held any more
        lets its arguments go."""
        for oid in oids:
            spec = self.lineage.pop(oid, None)
            if spec is None:
                continue
            left = self._kept[spec.task_id] - 1
            if left:
                self._kept[spec.task_id] = left
            else:
                del self._kept[spec.task_id]
                self.table.pin(spec.pinned, -1)

    async def recover_blob(self, oid: str, owner: ActorRef | None, lost: Any) -> Any:
        """The stored value ``lost`` of ``oid`` could not be read (its node is gone, or its
        copy): a readable one, re-made by its owner (us, or ``owner``) if need be."""
        if owner is None:
            state, payload = await self.recover(oid, lost)
        else:
            try:
                state, payload = await owner.recover_object.ask(oid, lost)
            except ActorDiedError as exc:
                raise OwnerDiedError(f"it cannot be made again: its owner died ({exc})") from None
            if state == READY:
                self.table.refresh(oid, payload)
        if state != READY:
            raise payload
        return payload

    async def recover(self, oid: str, lost: Any) -> tuple[int, Any]:
        """Re-make our object ``oid``, whose stored copy ``lost`` cannot be read, by running the
        task that made it again; ``(READY, blob)`` or ``(FAILED, error)``."""
        entry = self.table.entries.get(oid)
        if entry is None:
            return FAILED, ObjectLostError("its owner freed it (no reference to it was left)")
        if entry.state == READY and not _same_copy(entry.blob, lost):
            return READY, entry.blob  # re-made meanwhile: read the new copy
        if entry.state == READY:
            spec = self.lineage.get(oid)
            where = f"its copy on node {getattr(lost, 'node', '?')} is gone"
            if spec is None:
                return FAILED, ObjectLostError(
                    "it cannot be made again: it was not made by a task that can run again (but by tray.put, an "
                    "actor method, or a task with max_retries=0)")
            if spec.max_retries != -1 and spec.remade >= spec.max_retries:
                return FAILED, ObjectReconstructionFailedError(
                    f"it cannot be made again: task {spec.name} already ran again {spec.remade} time(s) to re-make "
                    f"it (max_retries={spec.max_retries})")
            await self._remake(spec, where)
        entry = await self.waits.wait_ready(oid, None)
        if entry is None:
            return FAILED, ObjectLostError("its owner freed it while it was re-made")
        return (READY, entry.blob) if entry.state == READY else (FAILED, entry.error)

    async def _remake(self, spec: TaskSpec, why: str) -> None:
        """Run ``spec`` again (once, however many of its results were found lost)."""
        running = self._remaking.get(spec.task_id)
        if running is not None:
            await running.wait()
            return
        running = self._remaking[spec.task_id] = trio.Event()
        spec.remade += 1
        log.info("task %s runs again (%d) to re-make its results: %s", spec.name, spec.remade, why)
        for oid in spec.return_ids:
            self.table.reset(oid)
        self.live.add(spec.task_id)
        self.tasks.add(spec, record(spec.task_id, spec.name, NORMAL_TASK, self.rt.job_id, None, None,
                                    PENDING_NODE_ASSIGNMENT))
        try:
            await self._run_task(spec)
        finally:
            del self._remaking[spec.task_id]
            running.set()

    def _task_failed(self, spec: TaskSpec, err: BaseException) -> None:
        self.waits.fail(spec.return_ids, err)
        self.tasks.end(spec, err)
        if spec.stream is not None:
            spec.stream.finish(err)
            self.streams.pop(spec.task_id, None)

    def stream_item(self, task_id: str, index: int, blob: bytes) -> None:
        stream = self.streams.get(task_id)
        if stream is not None:
            stream.add(index, blob)
            if stream.finished:
                del self.streams[task_id]

    # ----------------------------------------------------------------- cancel

    def cancel(self, task_id: str, force: bool, recursive: bool) -> None:
        """Cancel a task of ours: before it runs, it never will; while it runs, KeyboardInterrupt
        in it (``force``: its worker is killed); ``recursive``: the tasks it submitted too.
        An actor call of ours is cancelled as Ray cancels actor tasks (``ActorCalls.cancel_call``)."""
        if task_id not in self.live:
            self.calls.cancel_call(task_id)
            return
        self.cancelled.add(task_id)
        lease = self.running.get(task_id)
        if lease is None:
            return
        if force:
            self.note(lease.scheduler.kill_worker, lease.worker_id)
        else:
            self.note(lease.executor.interrupt, task_id, recursive)

    def cancel_children(self, parent: str) -> None:
        """The task ``parent`` (running here) was cancelled: so are the tasks it submitted."""
        for child in self.children.pop(parent, ()):
            self.cancel(child, False, True)

    def forget_children(self, parent: str) -> None:
        self.children.pop(parent, None)

    def describe_tasks(self) -> bytes:
        """Our task rows (``tray.util.state.list_tasks``), packed (``_tasklog.pack``); an actor
        call's state is where our queues have it: waiting here, or sent to its actor."""
        values, log = self.tasks.values(), self.tasks
        for q in self.calls.actors.values():
            values += [log.call_values(c, PENDING_ARGS_AVAIL if c.deps else PENDING_ACTOR) for c in q.calls]
            values += [log.call_values(c, SUBMITTED_TO_WORKER) for c in list(q.inflight.values())]
        return pack(values)

def _same_copy(a: Any, b: Any) -> bool:
    """Whether two stored values are the same copy (the key names the object; the node, the copy)."""
    return type(a) is Stored and type(b) is Stored and a.key == b.key and a.node == b.node


def _cancelled(spec: TaskSpec) -> TaskCancelledError:
    return TaskCancelledError(f"task {spec.name} ({spec.task_id}) was cancelled")


class OwnerActor(Actor):
    """This process's face to others: borrowers fetch values here, workers report calls."""

    def __init__(self, owner: Owner) -> None:
        self._owner = owner
        self._borrowers: dict[ActorRef, str] = {}  # processes that borrowed from us, by their owner actor

    async def get_object(self, oid: str) -> tuple[int, Any]:
        """(READY, blob) or (FAILED, error) once known; borrowers call this."""
        entry = await self._owner.waits.wait_ready(oid, None)
        if entry is None:
            from ..exceptions import ObjectLostError

            return FAILED, ObjectLostError(f"object {oid} is no longer held by its owner")
        return (READY, entry.blob) if entry.state == READY else (FAILED, entry.error)

    async def recover_object(self, oid: str, lost: Any) -> tuple[int, Any]:
        """A borrower could not read our object ``oid`` from its copy ``lost``: re-make it."""
        return await self._owner.recover(oid, lost)

    def borrow(self, oids: list[str], who: str, holder: ActorRef | None = None) -> None:
        """The process ``who`` holds refs to these objects (or actor handles) of ours: keep
        them for it, until it lets go or dies (``holder``, its own owner actor, is watched)."""
        for oid in oids:
            self._owner.table.add_borrower(oid, who)
        if holder is not None and holder not in self._borrowers:
            self._borrowers[holder] = who
            self.monitor(holder)

    def hold_inside(self, oid: str, inner: list[str]) -> None:
        """Refs of ours came home inside the value of our object ``oid`` (a task's result):
        they live while it does (Ray's nested refs). The worker waits for this answer
        before it replies, so they are held before the call lets go of them."""
        self._owner.table.hold_inside(oid, inner)

    def describe_objects(self) -> list[dict[str, Any]]:
        """What this process holds, for ``tray memory`` and ``tray.util.state.list_objects``."""
        rt = self._owner.rt
        return describe(self._owner.table, "DRIVER" if rt.worker_id is None else "WORKER")

    def describe_tasks(self) -> dict[str, Any]:
        """The tasks this driver submitted (``tray.util.state.list_tasks``)."""
        return {"tasks": self._owner.describe_tasks(), "running": []}

    def unborrow(self, oids: list[str], who: str) -> None:
        for oid in oids:
            self._owner.table.remove_borrower(oid, who)

    def call_done(self, executor: str, call_id: int, kind: str, payload: Any) -> None:
        self._owner.calls.call_done(executor, call_id, kind, payload)

    def stream_item(self, task_id: str, index: int, blob: bytes) -> None:
        self._owner.stream_item(task_id, index, blob)

    def watch(self, executor: ActorRef) -> None:
        self.monitor(executor)

    def worker_output(self, text: str, err: bool) -> None:
        """Output of a worker running this driver's job on another node, already prefixed
        with its origin: it goes to our terminal, as if the worker were ours."""
        out = sys.stderr if err else sys.stdout
        out.write(text)
        out.flush()

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        who = self._borrowers.pop(ref, None)
        if who is not None:  # a borrower died: what it held is not held any more (Ray's rule)
            self._owner.table.drop_borrower(who)
            return
        self._owner.calls.actor_down(ref, reason)

