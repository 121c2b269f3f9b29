"""Lanes: a calling thread's own connection to an actor, or to a leased task worker, for
the calls (and tasks) it waits on at once.

Through the loops, a waited actor call hops between threads four times: the caller's
thread sends it; the actor's loop thread reads it and hands it to the actor's main
thread, which runs it and replies; the caller's loop thread reads the reply and wakes
the caller. On a small machine each hop costs about what a whole process round trip
does. On a lane the caller's thread writes the call and reads the reply itself, and the
actor's main thread reads the call itself: two hops, as in a raw socket ping-pong.

- **Which calls.** ``.remote()`` holds back a call with small plain arguments (no
  ObjectRefs, no concurrency group, not streamed) to an actor that has a lane, or such a
  task (default scheduling and runtime_env) while an idle lease of its shape lingers and
  some task worker has a lane: ``tray.get`` of its ref by the same thread sends it down
  the lane. The thread's next tray call, or the loop after ``HOLD_S``, sends a held call
  the usual way instead, so nothing waits long and a thread's calls keep their order.
- **In flight like any call.** A lane call is in its actor's ``inflight`` while it runs, so
  an actor's death, restart, retries, cancel and ``tray list tasks`` treat it as any other;
  the loop and the thread each claim it by popping it from there, and only one can. A
  lane task runs on an idle lease the thread takes (and puts back): it is live, running
  on that lease, and listed, as any task.
- **What comes back.** The actor answers a lane call with its results (``ok``, when nothing
  it handed its loop is still unsent), else ``FAR``: the reply comes the usual way (an
  error, a cancel, refs lent, ending the actor) and the caller waits for it there. A task
  worker answers with the task's outcome, once what it handed its loop has run; results
  all inline end the task in the caller's thread, anything else (an error and its
  retries, a crash, stored results, a cancel) is the owner's, as any attempt's outcome.
- **Patience.** A reply not back in ``PATIENCE_S`` (or by the get's deadline, or after a
  KeyboardInterrupt) is left to the loop, which reads it off the lane; the caller then
  waits the usual way, with its deadline, warnings and progress bar.
- **Which executors.** An actor is asked for a lane the first time a thread waits at once
  on a call to it (``waited``); a sync actor that runs its calls on its main thread (which
  reads them), or an async actor (its asyncio loop reads them), without concurrency groups,
  opens one. The workers of a shape's idle leases are asked once a thread has waited at
  once on a task of that shape; each opens one read by its main thread. Lanes are on
  abstract Unix sockets with a token (so only a process on its machine, told the token by
  the executor, can use one), up to ``MAX_LANES`` per process at once (the lanes of
  executors gone since make room: a long-lived driver outlives many workers).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import secrets
import socket
import struct
import sys
import threading
import uuid
from collections.abc import Callable
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

import trio

from ..actors._crossing import in_asyncio
from ..exceptions import RayError
from ._specs import ActorCall

if TYPE_CHECKING:
    from ..actors import ActorRef
    from ._actor_calls import ActorCalls, _ActorQueue
    from ._leases import ShapePool
    from ._objects import ObjectRef
    from ._runtime import Runtime
    from ._specs import TaskSpec

log = logging.getLogger("tray.core")

HOLD_S = 0.002  # how long a held call waits for its caller's get before it goes the usual way
PATIENCE_S = 1.0  # how long a caller reads its lane before it leaves the reply to the loop
MAX_LANES = 64  # lanes one process opens at most (each is a file descriptor on both sides)
MAX_ARGS = 1 << 16  # larger arguments go the usual way
FAR = None  # the answer that says: the reply comes the usual way
LOST = object()  # what a lane that broke answers (its worker died)
_HEADER = struct.Struct("<I")


def send_message(sock: socket.socket, message: Any) -> None:
    """Write one message (its length, then its pickle) to a blocking socket."""
    data = pickle.dumps(message, 5)
    sock.sendall(_HEADER.pack(len(data)) + data)


def read_message(sock: socket.socket, got: bytearray) -> Any:
    """Read one message from a blocking socket, keeping what came in ``got`` (a read cut
    short by a timeout or an interrupt can be finished by someone else). EOFError: closed."""
    while True:
        if got:
            message = take_message(got)
            if message is not NOTHING:
                return message
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("the lane was closed")
        got += chunk


NOTHING = object()  # take_message: no whole message yet


def take_message(got: bytearray) -> Any:
    """The first whole message in ``got``, taken out of it; NOTHING if none is whole yet."""
    if len(got) >= 4:
        (n,) = _HEADER.unpack_from(got)
        if len(got) >= 4 + n:
            message = pickle.loads(memoryview(got)[4 : 4 + n])
            del got[: 4 + n]
            return message
    return NOTHING


def set_patience(sock: socket.socket, seconds: float) -> None:
    """A blocking read or write on ``sock`` gives up after ``seconds`` (BlockingIOError).
    The kernel's timeout, not Python's ``settimeout``, which polls before every read and
    write: two system calls more per call on a lane."""
    micros = max(1, round(seconds * 1e6))  # (a zero timeval is none: it would wait for ever)
    timeval = struct.pack("ll", micros // 1_000_000, micros % 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def _task_key(executor_id: str) -> str:
    """A task worker's key in ``Lanes.asked``, apart from the actor its worker may later host."""
    return executor_id + "/tasks"


class Lane:
    """The caller's end of one lane; ``lock`` is held by the one thread (or the loop) using it."""

    __slots__ = ("sock", "lock", "executor_id", "dead", "patience")

    def __init__(self, sock: socket.socket, executor_id: str) -> None:
        self.sock, self.executor_id = sock, executor_id
        self.patience = PATIENCE_S  # the socket's timeout now (set_patience)
        self.lock = threading.Lock()
        self.dead = False

    def close(self) -> None:
        self.dead = True
        self.sock.close()


class Lanes:
    """A process's lanes to the actors it calls, and the calls its threads hold back for them."""

    def __init__(self, rt: Runtime, calls: ActorCalls) -> None:
        self.rt, self.calls = rt, calls
        self.open: dict[str, Lane] = {}  # to actors, by executor id
        self.task_lanes: dict[str, Lane] = {}  # to task workers, by executor id
        # executors asked for a lane (each once), by key (an actor's: its id; a task worker's: _task_key)
        self.asked: dict[str, ActorRef] = {}
        # by thread: its held call, or task (its parent, its shape's pool), since when
        self.held: dict[int, tuple[ActorCall | TaskSpec, str | None, ShapePool | None, float]] = {}
        # by thread: its last call sent (first return id; its actor, or the task)
        self._last: dict[int, tuple[str, str | TaskSpec]] = {}
        self.tasks_open = False  # a lane to a task worker was opened (tasks may be held from now)
        self._wanting: set[frozenset] = set()  # task shapes whose workers are being looked at for lanes
        self._lock = threading.Lock()
        self._ticking = False
        self._holds = 0  # calls held, ever (the ticking task sees whether any were since it last looked)

    # ------------------------------------------------------------- caller's thread

    def submit(self, call: ActorCall) -> None:
        """``.remote()``: hold ``call`` for its lane, or send it the usual way."""
        self.flush()
        if self._holds_call(call):
            return
        calls = self.calls
        if not calls.send_call_now(call):
            self.rt.soon(calls.submit_call, call)
        if call.return_ids:
            self._last[threading.get_ident()] = (call.return_ids[0], call.actor_id)

    def submit_task(self, spec: TaskSpec, parent: str | None) -> None:
        """``.remote()`` of a task: hold it for a lane, or submit it the usual way."""
        self.flush()
        rt = self.rt
        owner = rt.owner
        plain = spec.strategy is None and spec.renv is None  # (default scheduling: any idle lease of its shape)
        pool = owner.leases.pool_for(spec.shape, spec.strategy, spec.renv) if self.tasks_open and plain else None
        if pool is not None and pool.idle and self._holdable(spec):
            self._hold(spec, parent, pool)
            return
        rt.soon(owner.submit_task, spec, parent)
        if spec.return_ids and plain:
            self._last[threading.get_ident()] = (spec.return_ids[0], spec)

    def _holds_call(self, call: ActorCall) -> bool:
        q = self.calls.actors.get(call.actor_id)
        executor = q.executor if q is not None else None
        if executor is None or executor.actor_id not in self.open or call.group is not None \
                or not self._holdable(call):
            return False
        self._hold(call, None, None)
        return True

    def _holdable(self, job: ActorCall | TaskSpec) -> bool:
        """Small plain arguments, results to wait for, and a caller that may wait in ``get``
        (code in an event loop never does)."""
        blob = job.args.blob
        return job.stream is None and bool(job.return_ids) and not job.args.pinned and type(blob) is bytes \
            and len(blob) <= MAX_ARGS and not self.rt.in_loop() and not in_asyncio()

    def _hold(self, job: ActorCall | TaskSpec, parent: str | None, pool: ShapePool | None) -> None:
        with self._lock:
            self.held[threading.get_ident()] = (job, parent, pool, perf_counter())
            self._holds += 1
            start, self._ticking = not self._ticking, True
        if start:
            self.rt.soon(self.calls.nursery.start_soon, self._tick)

    def flush(self) -> None:
        """Send this thread's held call the usual way (another tray call of the thread comes next)."""
        if not self.held:  # (the common case, without the lock)
            return
        with self._lock:
            held = self.held.pop(threading.get_ident(), None)
        if held is not None:
            self._send_usual(held[0], held[1])

    def waited(self, ref: ObjectRef) -> tuple[ActorCall | TaskSpec, str | None, ShapePool | None] | None:
        """``tray.get(ref)`` finds ``ref`` pending: the call (or task, with its parent and
        pool) this thread held that makes it, for :meth:`call`; else a held call goes the usual way, and
        the actor (or the workers) of the thread's last call are asked for a lane if ``ref``
        is that call's result."""
        me = threading.get_ident()
        with self._lock:
            held = self.held.get(me)
            mine = held is not None and held[0].return_ids[0] == ref._id
            if mine:
                del self.held[me]
        if held is None:
            last = self._last.pop(me, None)
            if last is not None and last[0] == ref._id:
                self._want(last[1])
            return None
        if not mine:
            self.flush()
            return None
        return held[0], held[1], held[2]

    def _want(self, target: str | TaskSpec) -> None:
        """Ask the actor's executor (``target``: its id) for a lane, once; or the workers a
        task like ``target`` runs on."""
        if not self._room():
            return
        if not isinstance(target, str):
            shape = frozenset(target.shape.items())
            if shape not in self._wanting:  # (one look at a time per shape: a loop of tasks no lane serves asks often)
                self._wanting.add(shape)
                with contextlib.suppress(RuntimeError):
                    self.rt.soon(self.calls.nursery.start_soon, self._want_workers, target, shape)
            return
        q = self.calls.actors.get(target)
        executor = q.executor if q is not None else None
        if executor is None or executor.actor_id in self.asked:
            return
        self.asked[executor.actor_id] = executor
        with contextlib.suppress(RuntimeError):
            self.rt.soon(self.calls.nursery.start_soon, self._open, executor, q)

    def _room(self) -> bool:
        """Whether one more executor may be asked for a lane: ``MAX_LANES`` at most, not
        counting executors gone since (a long-lived driver's ended actors, or the workers
        its node reaped), whose lanes close now."""
        if len(self.asked) < MAX_LANES:
            return True
        for executor in list(self.asked.values()):
            if not executor.alive:
                self.lost(executor.actor_id)
        return len(self.asked) < MAX_LANES

    async def _want_workers(self, spec: TaskSpec, shape: frozenset) -> None:
        """Loop: once ``spec`` is done (a moment), ask the workers of its shape's idle leases
        (its own among them) for task lanes."""
        owner = self.rt.owner
        try:
            with trio.move_on_after(0.1):
                while spec.task_id in owner.live:
                    await trio.sleep(0.0005)
        finally:
            self._wanting.discard(shape)
        pool = owner.leases.pool_for(spec.shape, spec.strategy, spec.renv)
        for lease in list(pool.idle) if pool is not None else ():
            key = _task_key(lease.executor.actor_id)
            if key not in self.asked and self._room():
                self.asked[key] = lease.executor
                self.calls.nursery.start_soon(self._open, lease.executor, None)

    def call(self, job: ActorCall | TaskSpec, parent: str | None, pool: ShapePool | None,
             deadline: float | None = None) -> None:
        """Send a held call (or task) down its lane and read the reply, which resolves its
        refs; or, if that cannot be (or not by ``deadline``, a ``time.monotonic()``), send it
        (or leave its reply) to the loop."""
        if not isinstance(job, ActorCall):
            assert pool is not None  # (a held task's)
            self._run_task(job, parent, pool, deadline)
            return
        call = job
        calls, rt = self.calls, self.rt
        q = calls.actors.get(call.actor_id)
        executor = q.executor if q is not None else None
        lane = self.open.get(executor.actor_id) if executor is not None else None
        if q is None or executor is None or lane is None or lane.dead or not lane.lock.acquire(blocking=False):
            self._send_usual(call, None)
            return
        call_id = calls.claim_lane(q, executor, call)
        if call_id is None:
            lane.lock.release()
            self._send_usual(call, None)
            return

        def answer(reply: Any) -> None:
            if reply is not FAR and reply is not LOST:  # lost: its actor died, and is answered as a call in flight then
                calls.lane_done(q, call_id, reply)

        def unsent() -> None:
            if calls.unclaim(q, call_id):
                self._send_usual(call, None)

        self._ask(lane, (call_id, call.wire(), rt.system.uid), answer, unsent, deadline)

    def _run_task(self, spec: TaskSpec, parent: str | None, pool: ShapePool, deadline: float | None) -> None:
        """A held task, down the lane of a worker we hold an idle lease on (if there is one)."""
        rt = self.rt
        owner = rt.owner
        leases = owner.leases
        lease, lane = leases.take_idle(pool, self.task_lanes)
        if lane is None or lane.dead or not lane.lock.acquire(blocking=False):
            if lease is not None:
                leases.put_back(pool, lease)
            else:  # no idle lease with a lane: ask those there are for one
                self._want(spec)
            self._send_usual(spec, parent)
            return
        assert lease is not None
        owner.task_on_lane(spec, parent, lease)

        def answer(reply: Any) -> None:
            if reply is LOST:  # its worker died
                reply = ("crashed", RayError(f"the worker running task {spec.name} ({lease.worker_id}) died"))
            owner.lane_answered(spec, pool, lease, *reply)

        def unsent() -> None:  # (not begun: a new attempt, from the start)
            owner.lane_answered(spec, pool, lease, "crashed", RayError("its lane broke"))

        self._ask(lane, spec.wire(rt.owner_ref, lease.gpus), answer, unsent, deadline)

    def _ask(self, lane: Lane, message: Any, answer: Callable[[Any], None], unsent: Callable[[], None],
             deadline: float | None) -> None:
        """Write ``message`` down ``lane`` (whose lock we hold) and ``answer`` its reply (LOST
        if the lane broke after it went); ``unsent``: cut short before it went whole."""
        sent = False
        got = bytearray()
        patience = PATIENCE_S if deadline is None else max(0.001, min(PATIENCE_S, deadline - monotonic()))
        if lane.patience != patience:
            lane.patience = patience
            set_patience(lane.sock, patience)
        try:
            send_message(lane.sock, message)
            sent = True
            reply = read_message(lane.sock, got)
        except (BlockingIOError, KeyboardInterrupt):  # (BlockingIOError: out of patience)
            if sent:  # the loop reads the reply; the caller waits for it the usual way
                with contextlib.suppress(RuntimeError):
                    self.rt.soon(self.calls.nursery.start_soon, self._finish, lane, got, answer)
            else:  # cut short while it went: the worker reads nothing from a lane cut mid-message
                self._drop(lane)
                unsent()
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise
            return
        except (OSError, EOFError, pickle.UnpicklingError):
            self._drop(lane)
            answer(LOST)
            return
        lane.lock.release()
        answer(reply)

    def _send_usual(self, job: ActorCall | TaskSpec, parent: str | None) -> None:
        if not isinstance(job, ActorCall):
            self.rt.soon(self.rt.owner.submit_task, job, parent)
        elif not self.calls.send_call_now(job):
            self.rt.soon(self.calls.submit_call, job)

    def _drop(self, lane: Lane) -> None:
        """A lane that broke: closed, and forgotten."""
        for lanes in (self.open, self.task_lanes):
            if lanes.get(lane.executor_id) is lane:
                del lanes[lane.executor_id]
        lane.close()
        with contextlib.suppress(RuntimeError):
            lane.lock.release()

    # ------------------------------------------------------------------- loop

    async def _tick(self) -> None:
        """While calls are held: send those held for ``HOLD_S`` the usual way. It ends after
        a tick with none held and none held since the last (a thread that holds its calls one
        after another would otherwise start it again every few calls)."""
        seen = -1
        while True:
            await trio.sleep(HOLD_S)
            now = perf_counter()
            with self._lock:
                stale = [t for t, (_, _, _, since) in self.held.items() if now - since >= HOLD_S]
                late = [self.held.pop(t) for t in stale]
                if not self.held and not late and self._holds == seen:
                    self._ticking = False
                    return
                seen = self._holds
            for job, parent, _, _ in late:
                if isinstance(job, ActorCall):
                    self.calls.submit_call(job)
                else:
                    self.rt.owner.submit_task(job, parent)

    async def _open(self, executor: ActorRef, q: _ActorQueue | None) -> None:
        """Ask ``executor`` for a lane (an actor's, for its queue ``q``; else a task worker's)
        and connect it (a refusal, or one on another machine: none)."""
        try:
            offer = await executor.open_lane.ask(q is None)
        except RayError:
            return
        if offer is None:
            return
        address, token = offer
        conn = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await conn.connect(address)
            await conn.send(token)
        except OSError:
            conn.close()
            return
        sock = socket.socket(fileno=conn.detach())
        sock.setblocking(True)
        set_patience(sock, PATIENCE_S)
        if not executor.alive or (q is not None and (q.executor is not executor or q.dead is not None)) \
                or self.rt.closed:
            sock.close()
            return
        (self.open if q is not None else self.task_lanes)[executor.actor_id] = Lane(sock, executor.actor_id)
        if q is None:
            self.tasks_open = True

    async def _finish(self, lane: Lane, got: bytearray, answer: Callable[[Any], None]) -> None:
        """Read a reply its caller stopped waiting for, and ``answer`` it."""
        sock = lane.sock
        sock.setblocking(False)  # (the loop's reads do not block; it waits until the lane is readable)
        try:
            while True:
                try:
                    reply = read_message(sock, got)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._drop(lane)
            answer(LOST)
            return
        sock.setblocking(True)
        lane.lock.release()
        answer(reply)

    def lost(self, executor_id: str) -> None:
        """The executor is gone: its lanes close (now, or by the thread reading one)."""
        for key, lanes in ((executor_id, self.open), (_task_key(executor_id), self.task_lanes)):
            self.asked.pop(key, None)
            lane = lanes.pop(executor_id, None)
            if lane is not None:
                lane.dead = True
                if lane.lock.acquire(blocking=False):
                    lane.close()

    def close(self) -> None:
        for lanes in (self.open, self.task_lanes):
            for lane in list(lanes.values()):
                lane.close()
            lanes.clear()


# ----------------------------------------------------------------- the actor's end


class LaneServer:
    """A sync actor's lanes: the address callers connect to, and the accepting of them (in
    the loop); each lane then goes to the main thread, which reads its calls itself."""

    def __init__(self, serve: Any, add_lane: Any) -> None:
        self.address = f"\0tray-lane-{uuid.uuid4().hex}"
        self.token = secrets.token_bytes(16)
        self._serve, self._add_lane = serve, add_lane
        self._listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    async def start(self) -> None:
        await self._listener.bind(self.address)
        self._listener.listen(16)
        trio.lowlevel.spawn_system_task(self._accept)

    async def _accept(self) -> None:
        with contextlib.suppress(OSError, trio.Cancelled):
            while True:
                conn, _ = await self._listener.accept()
                with trio.move_on_after(5):
                    got = b""
                    while len(got) < len(self.token):
                        chunk = await conn.recv(len(self.token) - len(got))
                        if not chunk:
                            break
                        got += chunk
                if not secrets.compare_digest(got, self.token):
                    conn.close()
                    continue
                sock = socket.socket(fileno=conn.detach())
                sock.setblocking(True)
                self._add_lane(sock, self._serve)
