"""An owner's actors: creating (and re-creating) the actors it made, and sending a handle's
calls to an actor in order.

A part of :class:`~tray.core._owner.Owner`, apart because actors are their own protocol:
calls go out as tells in submission order per handle and come back as ``call_done``
tells, so they pipeline; the creator restarts its actor after a crash (``max_restarts``
re-runs ``__init__``) and re-sends the calls in flight (``max_task_retries``); a
non-detached actor ends when its last handle anywhere is gone (Ray's rules).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from ..actors import ActorRef
from ..cluster._memory import is_memory_kill
from ..exceptions import (
    ActorDiedError,
    MailboxFull,
    OutOfMemoryError,
    RayError,
    RuntimeEnvSetupError,
    TaskCancelledError,
)
from ._deaths import death_of_executor
from ._lanes import Lanes
from ._tasklog import (
    ACTOR_CREATION_TASK,
    PENDING_ARGS_AVAIL,
    PENDING_NODE_ASSIGNMENT,
    call_task_id,
    dispatched,
    record,
)

if TYPE_CHECKING:
    from ._leases import Lease, Leases
    from ._notes import Notes
    from ._objects import ObjectTable
    from ._runtime import Runtime
    from ._specs import ActorCall, Args
    from ._tasklog import TaskLog
    from ._waits import ObjectWaits

log = logging.getLogger("tray.core")

SHUTDOWN_HOOK_S = 30.0  # how long an actor's __ray_shutdown__ may run when its last handle is gone


class _ActorQueue:
    """One actor's calls from this process, sent in order once the actor runs."""

    __slots__ = ("actor_id", "executor", "ready", "calls", "pumping", "dead", "inflight", "recipe", "restarts",
                 "doomed", "lease", "direct", "creating")

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        self.executor: ActorRef | None = None
        self.ready = trio.Event()  # set once executor is known, or the actor is dead
        self.calls: deque[ActorCall] = deque()
        self.pumping = False
        self.dead: BaseException | None = None
        self.inflight: dict[int, ActorCall] = {}
        self.recipe: ActorRecipe | None = None  # only in the process that created the actor
        self.restarts = 0
        self.doomed = False  # its last handle is gone: it ends once its calls are done
        self.lease: Lease | None = None  # the current incarnation's (creator only): its node says why it died
        # The actor runs and no call waits here: the caller's thread may send a call itself
        # (``send_call_now``). Changed by the loop under the owner's ``_calls_lock``.
        self.direct = False
        self.creating: Lease | None = None  # the lease its __init__ runs under, until it returns


def _claim_all(q: _ActorQueue) -> list[ActorCall]:
    """The loop takes every call in flight to answer it, in the order they went; a lane call
    its caller's thread answered meanwhile is not among them (each side claims by popping)."""
    claimed = []
    for call_id in list(q.inflight):
        call = q.inflight.pop(call_id, None)
        if call is not None:
            claimed.append(call)
    return claimed


class ActorRuntimeEnvError(ActorDiedError, RuntimeEnvSetupError):
    """An actor that never started because its runtime_env could not be set up: its calls
    raise this, which is both (code may catch either, as Ray's users do)."""


class ActorRecipe:
    """How the creator (re)starts an actor: Ray's max_restarts re-runs ``__init__``."""

    __slots__ = ("class_name", "cls_blob", "args", "shape", "max_concurrency", "max_restarts", "strategy",
                 "detached", "groups", "renv")

    def __init__(self, class_name: str, cls_blob: bytes, args: Args, shape: dict[str, int],
                 max_concurrency: int | None, max_restarts: int, strategy: tuple | None = None,
                 detached: bool = False, groups: dict[str, int] | None = None, renv: tuple | None = None) -> None:
        self.class_name, self.cls_blob, self.args, self.shape = class_name, cls_blob, args, shape
        self.max_concurrency, self.max_restarts = max_concurrency, max_restarts
        self.strategy, self.detached = strategy, detached
        self.groups = groups  # Ray's concurrency_groups: name -> how many of its calls run at once
        self.renv = renv  # its runtime_env (key, env) for its lease; None: the default one


class ActorCalls:
    """The actor part of an owner (see the module docstring)."""

    def __init__(self, rt: Runtime, table: ObjectTable, nursery: trio.Nursery, note: Notes, tasks: TaskLog,
                 waits: ObjectWaits, leases: Leases) -> None:
        self.rt, self.table, self.nursery, self.note = rt, table, nursery, note
        self.tasks, self.waits, self.leases = tasks, waits, leases
        self.actors: dict[str, _ActorQueue] = {}  # by actor id
        self.by_executor: dict[str, _ActorQueue] = {}  # by the executor's actor id
        self.collectable: set[str] = set()  # actors we created that end with their last handle
        self.shutdown_hooks: set[str] = set()  # of those, the ones whose class has Ray's __ray_shutdown__
        self._calls_lock = threading.Lock()
        self._call_ids = itertools.count(1)
        self.lanes = Lanes(rt, self)

    def send_call_now(self, call: ActorCall) -> bool:
        """The caller's thread: send ``call`` to its actor from here, sparing two trips
        through the loop, when nothing can be ahead of it: the actor runs, no call of
        ours waits for it, the loop has run all we handed it, the connection is idle.
        False, having changed nothing: ``submit_call`` it through the loop."""
        q = self.actors.get(call.actor_id)
        if q is None or not q.direct or call.deps or not self.rt.quiet():
            return False
        with self._calls_lock:
            executor = q.executor
            if not q.direct or executor is None:
                return False
            call_id = next(self._call_ids)
            q.inflight[call_id] = call  # before it goes: its reply may come back at once
            self.tasks.call_submitted(call)
            if executor.call.tell_from_thread(call_id, call.wire(), self.rt.system.uid):
                return True
            del q.inflight[call_id]
            return False

    def claim_lane(self, q: _ActorQueue, executor: ActorRef, call: ActorCall) -> int | None:
        """The caller's thread: ``call`` is in flight on ``executor``'s lane from now, if
        nothing can be ahead of it (as for ``send_call_now``, and no call of ours is in flight
        there: the lane would overtake it); its call id. None: it goes the usual way."""
        with self._calls_lock:
            if not q.direct or q.executor is not executor or q.inflight or not self.rt.quiet():
                return None
            call_id = next(self._call_ids)
            q.inflight[call_id] = call
        self.tasks.call_submitted(call)
        return call_id

    def unclaim(self, q: _ActorQueue, call_id: int) -> bool:
        """A lane call that did not go: True if it is still ours to send (nothing answered it)."""
        return q.inflight.pop(call_id, None) is not None

    def lane_done(self, q: _ActorQueue, call_id: int, blobs: list) -> None:
        """A lane call's results, read by its caller's thread (or the loop): they are its
        refs' values, unless the loop answered the call first (its actor died meanwhile)."""
        call = q.inflight.pop(call_id, None)
        if call is not None:
            self._answered(q, call, blobs)

    def _answered(self, q: _ActorQueue, call: ActorCall, blobs: list) -> None:
        self.table.pin(call.pinned, -1)
        for oid, blob in zip(call.return_ids, blobs):  # noqa: B905 - hot path: one blob per return id
            self.table.resolve(oid, blob)
        self.tasks.call_ended(call)
        if q.doomed:
            if self.rt.in_loop():
                self._reap(q)
            else:
                self.rt.soon_unless_closed(self._reap, q)

    def _direct(self, q: _ActorQueue, on: bool) -> None:
        """Allow (when the queue is idle) or stop callers sending ``q``'s calls themselves."""
        with self._calls_lock:
            q.direct = on and q.executor is not None and q.dead is None and not q.calls and not q.pumping

    def create_actor(self, actor_id: str, recipe: ActorRecipe) -> None:
        q = self._queue(actor_id, resolve=False)
        q.recipe = recipe
        self.nursery.start_soon(self._create_actor, q)

    async def _create_actor(self, q: _ActorQueue) -> None:
        """Start the actor (again, after a crash) in a worker of its own."""
        recipe = q.recipe
        assert recipe is not None
        lease = None
        rec = self.tasks.add(q, record(q.actor_id, f"{recipe.class_name}.__init__", ACTOR_CREATION_TASK,
                                       self.rt.job_id, q.actor_id, None, PENDING_ARGS_AVAIL))
        rec["attempt_number"] = q.restarts
        try:
            err = await self.waits.wait_deps(recipe.args.deps)
            if err is not None:
                raise err
            rec["state"] = PENDING_NODE_ASSIGNMENT
            lease = await self.leases.request(recipe.shape, recipe.strategy, q.actor_id, recipe.detached,
                                             recipe.renv)
            dispatched(rec, lease.node_id, lease.worker_id, lease.pid)
            if q.dead is not None:  # killed while it waited for a worker
                raise q.dead
            q.creating = lease
            await lease.executor.create_actor.ask(q.actor_id, recipe.cls_blob, recipe.args.blob,
                                                  recipe.args.inline(self.table), recipe.max_concurrency,
                                                  recipe.groups, recipe.shape, lease.gpus)
        except Exception as exc:  # noqa: BLE001 - any failure to create it is the actor's death, with its cause
            q.creating = None
            died = ActorRuntimeEnvError if isinstance(exc, RuntimeEnvSetupError) else ActorDiedError
            err = died(f"actor {recipe.class_name} ({q.actor_id}) could not be created: {exc}")
            err.__cause__ = exc
            if lease is not None:
                self.note(lease.scheduler.release, lease.lease_id)
            self.tasks.end(q, exc)
            self._actor_died(q, err)
            return
        q.creating = None
        self.tasks.end(q)
        if q.dead is not None:  # killed while it started
            self.note(lease.scheduler.release, lease.lease_id)
            return
        self.note(self.rt.control.actor_ready, q.actor_id, lease.executor, lease.node_id, lease.lease_id, lease.pid)
        q.lease = lease
        self._bind(q, lease.executor)

    async def _restart_actor(self, q: _ActorQueue, died: str) -> None:
        """Start a new incarnation, unless it was killed for good meanwhile."""
        try:
            alive = await self.rt.control.actor_restarting.ask(q.actor_id)
        except RayError:
            alive = False
        if alive:
            await self._create_actor(q)
        else:
            self._actor_died(q, ActorDiedError(f"{died}; it is not restarted: it was killed"))

    def _queue(self, actor_id: str, resolve: bool = True) -> _ActorQueue:
        q = self.actors.get(actor_id)
        if q is None:
            q = self.actors[actor_id] = _ActorQueue(actor_id)
            if resolve:  # a handle we did not create: ask the node where the actor runs
                self.nursery.start_soon(self._resolve_actor, q)
        return q

    async def _resolve_actor(self, q: _ActorQueue) -> None:
        try:
            executor, reason = await self.rt.control.lookup_actor.ask(q.actor_id)
        except RayError as exc:
            executor, reason = None, exc
        if executor is None:
            self._actor_died(q, ActorDiedError(f"actor {q.actor_id} is dead ({reason})"))
        else:
            self._bind(q, executor)

    def _bind(self, q: _ActorQueue, executor: ActorRef) -> None:
        q.executor = executor
        self.by_executor[executor.actor_id] = q
        q.ready.set()
        self.rt.owner_ref.watch.tell_nowait(executor)  # type: ignore[union-attr]
        self.note(executor.hello, self.rt.owner_ref)  # before any call: same connection, in order
        if q.calls and not q.pumping:
            q.pumping = True
            self.nursery.start_soon(self._pump, q)
        self._direct(q, True)

    def submit_call(self, call: ActorCall) -> None:
        self.table.collect()
        q = self._queue(call.actor_id)
        self.tasks.call_submitted(call)
        if q.dead is not None:
            self._fail(call, q.dead, sent=False)
            return
        if not q.calls and not q.pumping and not call.deps and q.executor is not None and self._send(q, call):
            return  # sent at once: nothing queued ahead of it, nothing to wait for
        self._direct(q, False)
        q.calls.append(call)
        if not q.pumping:
            q.pumping = True
            self.nursery.start_soon(self._pump, q)

    def _send(self, q: _ActorQueue, call: ActorCall) -> bool:
        """Send ``call`` now if the connection takes it without waiting."""
        call_id = next(self._call_ids)
        q.inflight[call_id] = call
        try:
            q.executor.call.tell_nowait(call_id, call.wire(), self.rt.system.uid)  # type: ignore[union-attr]
        except MailboxFull:  # backed up: queue it, and the pump waits for room
            del q.inflight[call_id]
            return False
        except RayError:
            pass  # the actor is gone: its down notice decides (restart or fail) for this call
        return True

    async def _pump(self, q: _ActorQueue) -> None:
        """Send a handle's calls in order, each once its arguments are ready."""
        try:
            while q.calls and q.dead is None:
                if q.executor is None:  # not started yet, or restarting: _bind pumps again
                    return
                call = q.calls[0]
                if call.deps:
                    err = await self.waits.wait_deps(call.deps)
                    if err is not None:
                        q.calls.popleft()
                        self._fail(call, err, sent=False)
                        continue
                if q.executor is None:
                    return
                q.calls.popleft()
                call_id = next(self._call_ids)
                q.inflight[call_id] = call
                self.tasks.call_sent(call)
                try:
                    await q.executor.call.tell(call_id, call.wire(), self.rt.system.uid)
                except RayError:
                    pass  # the actor is gone: its down notice decides (restart or fail) for this call
        finally:
            q.pumping = False
            self._direct(q, True)

    def handle_dropped(self, actor_id: str) -> None:
        """No handle of an actor we created is left anywhere (``Owner``'s handle counting):
        it ends once the calls already made are done (Ray's rule; detached actors stay)."""
        if actor_id in self.collectable:
            q = self._queue(actor_id, resolve=False)
            q.doomed = True
            self._reap(q)

    def _reap(self, q: _ActorQueue) -> None:
        if q.doomed and not q.calls and not q.inflight and q.dead is None and q.actor_id in self.collectable:
            self.collectable.discard(q.actor_id)
            if q.actor_id in self.shutdown_hooks and q.executor is not None:
                self.nursery.start_soon(self._shut_down, q)
                return
            self._actor_died(q, ActorDiedError(f"actor {q.actor_id} ended: no handle to it is left"))

    async def _shut_down(self, q: _ActorQueue) -> None:
        """An actor whose handles are all gone ends gracefully, as in Ray: its
        ``__ray_shutdown__`` runs first (what it raises is its own business; one that hangs
        is cut short), then its process goes. ``tray.kill`` skips it, as Ray's does."""
        from ._objects import ObjectRef
        from ._specs import ActorCall, Args

        self.shutdown_hooks.discard(q.actor_id)
        oid = self.table.new_id()
        self.table.add_owned(oid)
        done = ObjectRef(oid, None, self.table)
        self.submit_call(ActorCall(q.actor_id, "__ray_shutdown__", Args(self.table, (), {}, "__ray_shutdown__"),
                                   [oid], 1, self.table, 0))
        with trio.move_on_after(SHUTDOWN_HOOK_S):
            await self.waits.wait_ready(oid, None)
        del done
        self._actor_died(q, ActorDiedError(f"actor {q.actor_id} ended: no handle to it is left"))

    def find_call(self, task_id: str) -> tuple[_ActorQueue, ActorCall, bool] | None:
        """Our actor call with that task id: its queue, the call, and whether it was sent
        (else it waits here); None: no such call, or it is done."""
        for q in list(self.actors.values()):
            for call in q.calls:
                if call_task_id(call) == task_id:
                    return q, call, False
            for call in list(q.inflight.values()):
                if call_task_id(call) == task_id:
                    return q, call, True
        return None

    def cancel_call(self, task_id: str) -> None:
        """``tray.cancel`` of an actor call of ours: one still waiting here fails at once with
        TaskCancelledError; one sent, its actor is told (``Executor.cancel_call`` says what then)."""
        found = self.find_call(task_id)
        if found is None:
            return
        q, call, sent = found
        if not sent:
            q.calls.remove(call)
            self._fail(call, TaskCancelledError(f"actor call {call.method} ({task_id}) was cancelled"), sent=False)
        elif q.executor is not None:
            self.note(q.executor.cancel_call, task_id)

    def kill_actor(self, actor_id: str, no_restart: bool) -> None:
        q = self._queue(actor_id)
        self.note(self.rt.control.kill_actor, actor_id, no_restart)
        if q.creating is not None:  # its __init__ runs: the control store knows no process yet, we do
            self.note(q.creating.scheduler.release, q.creating.lease_id)  # its worker goes, its resources return
        if no_restart:
            self._actor_died(q, ActorDiedError(f"actor {actor_id} was killed by tray.kill()"))
        # else: its process dies; it restarts if its max_restarts allows

    def call_done(self, executor: str, call_id: int, kind: str, payload: Any) -> None:
        q = self.by_executor.get(executor)
        if q is None:
            return
        call = q.inflight.pop(call_id, None)
        if call is None:
            return
        if kind == "ok":
            self._answered(q, call, payload)
            return
        if kind == "streamed":  # its items travel apart from this reply: count them in
            self.table.pin(call.pinned, -1)
            stream = call.stream
            assert stream is not None
            stream.expect(*payload)
            if stream.finished:
                self.rt.owner.streams.pop(stream.task_id, None)
            self.tasks.call_ended(call, payload[1])
        else:
            self._fail(call, payload)
            exited = getattr(payload, "tray_actor_exited", None)
            if exited is not None:  # exit_actor(): no restart, and the other calls fail naming it
                self._actor_died(q, ActorDiedError(exited))
                return
        if q.doomed:
            self._reap(q)

    def actor_down(self, executor: ActorRef, reason: Any) -> None:
        """The actor's process is gone: restart it (creator) or wait for its restart (others)."""
        self.lanes.lost(executor.actor_id)
        q = self.by_executor.pop(executor.actor_id, None)
        if q is None or q.dead is not None or q.executor != executor:
            return
        self._direct(q, False)
        q.executor = None
        q.ready = trio.Event()
        lease, q.lease = q.lease, None
        if lease is not None and lease.executor != executor:
            lease = None
        with contextlib.suppress(RuntimeError):  # the runtime is closing: nobody waits for the answer
            self.nursery.start_soon(self._ask_why_down, q, lease, executor, reason)

    async def _ask_why_down(self, q: _ActorQueue, lease: Lease | None, executor: ActorRef, reason: Any) -> None:
        """Ask its node why it died first (we created it: the lease names the node; else every node is asked)."""
        if lease is not None:
            why = await self.leases.death_of(lease, reason)
        else:
            why = await death_of_executor(self.rt, executor.actor_id, reason)
        if q.dead is None:  # not killed for good meanwhile
            self._handle_down(q, why)

    def _handle_down(self, q: _ActorQueue, reason: Any) -> None:
        died = f"actor {q.actor_id} died"  # why (with its stderr's last lines) goes last in each message
        error = OutOfMemoryError if is_memory_kill(str(reason)) else ActorDiedError  # Ray's error for a memory kill
        retry = []
        for call in _claim_all(q):  # sent, maybe run: retried only with max_task_retries
            if call.retries_left != 0:
                call.retries_left -= 1 if call.retries_left > 0 else 0
                retry.append(call)
                self.tasks.call_retried(call)
            else:
                self._fail(call, error(f"{died} while handling {call.method}: {reason}"))
        q.calls.extendleft(reversed(retry))
        recipe = q.recipe
        if recipe is None:  # another process created it: the node knows whether it comes back
            self.nursery.start_soon(self._resolve_actor, q)
        elif recipe.max_restarts == -1 or q.restarts < recipe.max_restarts:
            q.restarts += 1
            log.info("%s (%s); restarting it (%d of %s)", died, reason, q.restarts, recipe.max_restarts)
            self.nursery.start_soon(self._restart_actor, q, f"{died} ({reason})")
        else:
            self._actor_died(q, ActorDiedError(f"{died}; it was restarted {q.restarts} time(s)"
                                               f" (max_restarts={recipe.max_restarts}): {reason}"))

    def _actor_died(self, q: _ActorQueue, err: BaseException) -> None:
        if q.dead is not None:
            return
        self._direct(q, False)
        q.dead = err
        q.ready.set()
        if q.recipe is not None:  # its creator says it is gone for good
            self.note(self.rt.control.actor_failed, q.actor_id, str(err))
            self.table.pin(q.recipe.args.pinned, -1)
        for call in _claim_all(q):  # sent, maybe run: Ray's RayActorError
            self._fail(call, ActorDiedError(f"{err}; call {call.method} did not complete"), logged=err)
        for call in q.calls:
            self._fail(call, err, sent=False)
        q.calls.clear()

    def _fail(self, call: ActorCall, err: BaseException, sent: bool = True,
              logged: BaseException | None = None) -> None:
        """``call`` failed with ``err``: its refs raise it (a stream ends with it), its arguments
        are let go, and the task log records ``logged`` (default: ``err``)."""
        self.waits.fail(call.return_ids, err)
        if call.stream is not None:
            call.stream.finish(err)
            self.rt.owner.streams.pop(call.stream.task_id, None)
        self.table.pin(call.pinned, -1)
        self.tasks.call_ended(call, err if logged is None else logged, sent=sent)
