"""Lanes: a calling thread's own connection to a sync actor, for the calls it waits on at once.

Through the loops, a waited actor call hops between threads four times: the caller's
thread sends it; the actor's loop thread reads it and hands it to the actor's main
thread, which runs it and replies; the caller's loop thread reads the reply and wakes
the caller. On a small machine each hop costs about what a whole process round trip
does. On a lane the caller's thread writes the call and reads the reply itself, and the
actor's main thread reads the call itself: two hops, as in a raw socket ping-pong.

- **Which calls.** ``.remote()`` on an actor that has a lane holds back a call with small
  plain arguments (no ObjectRefs, no concurrency group, not streamed): ``tray.get`` of
  its ref by the same thread sends it down the lane. The thread's next tray call, or the
  loop after ``HOLD_S``, sends a held call the usual way instead, so nothing waits long
  and a thread's calls keep their order.
- **In flight like any call.** A lane call is in its actor's ``inflight`` while it runs, so
  an actor's death, restart, retries, cancel and ``tray list tasks`` treat it as any other;
  the loop and the thread each claim it by popping it from there, and only one can.
- **What comes back.** The actor answers a lane call with its results (``ok``, when nothing
  it handed its loop is still unsent), else ``FAR``: the reply comes the usual way (an
  error, a cancel, refs lent, ending the actor) and the caller waits for it there.
- **Patience.** A reply not back in ``PATIENCE_S`` (or a KeyboardInterrupt meanwhile) is
  left to the loop, which reads it off the lane; the caller then waits the usual way, with
  its deadline, warnings and progress bar.
- **Which actors.** An executor is asked for a lane the first time a thread waits at once
  on a call to it (``waited``); a sync actor that runs its calls on its main thread (which
  reads them), or an async actor (its asyncio loop reads them), without concurrency groups,
  opens one, on an abstract Unix socket with a token (so only a process on its machine,
  told the token by the actor, can use it), up to ``MAX_LANES`` per process.
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
from time import perf_counter
from typing import TYPE_CHECKING, Any

import trio

from ..actors._crossing import in_asyncio
from ..exceptions import RayError

if TYPE_CHECKING:
    from ..actors import ActorRef
    from ._actor_calls import ActorCalls, _ActorQueue
    from ._objects import ObjectRef
    from ._runtime import Runtime
    from ._specs import ActorCall

log = logging.getLogger("tray.core")

HOLD_S = 0.002  # how long a held call waits for its caller's get before it goes the usual way
PATIENCE_S = 1.0  # how long a caller reads its lane before it leaves the reply to the loop
MAX_LANES = 64  # lanes one process opens at most (each is a file descriptor on both sides)
MAX_ARGS = 1 << 16  # larger arguments go the usual way
FAR = None  # the answer that says: the reply comes the usual way
_HEADER = struct.Struct("<I")


def send_message(sock: socket.socket, message: Any) -> None:
    """Write one message (its length, then its pickle) to a blocking socket."""
    data = pickle.dumps(message, 5)
    sock.sendall(_HEADER.pack(len(data)) + data)


def read_message(sock: socket.socket | _NonBlocking, got: bytearray) -> Any:
    """Read one message from a blocking socket, keeping what came in ``got`` (a read cut
    short by a timeout or an interrupt can be finished by someone else). EOFError: closed."""
    while True:
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


class Lane:
    """The caller's end of one lane; ``lock`` is held by the one thread (or the loop) using it."""

    __slots__ = ("sock", "lock", "executor_id", "dead")

    def __init__(self, sock: socket.socket, executor_id: str) -> None:
        self.sock, self.executor_id = sock, executor_id
        self.lock = threading.Lock()
        self.dead = False

    def close(self) -> None:
        self.dead = True
        self.sock.close()


class Lanes:
    """A process's lanes to the actors it calls, and the calls its threads hold back for them."""

    def __init__(self, rt: Runtime, calls: ActorCalls) -> None:
        self.rt, self.calls = rt, calls
        self.open: dict[str, Lane] = {}  # by executor id
        self.asked: set[str] = set()  # executors asked for a lane (each once)
        self.held: dict[int, tuple[ActorCall, float]] = {}  # by thread: its held call, since when
        self._last: dict[int, tuple[str, str]] = {}  # by thread: its last call sent (first return id, actor)
        self._lock = threading.Lock()
        self._ticking = False

    # ------------------------------------------------------------- caller's thread

    def submit(self, call: ActorCall) -> None:
        """``.remote()``: hold ``call`` for its lane, or send it the usual way."""
        if self.held:
            self.flush()
        if self._holds(call):
            return
        calls = self.calls
        if not calls.send_call_now(call):
            self.rt.soon(calls.submit_call, call)
        if call.return_ids:
            self._last[threading.get_ident()] = (call.return_ids[0], call.actor_id)

    def _holds(self, call: ActorCall) -> bool:
        blob = call.args.blob
        if call.stream is not None or call.group is not None or call.args.pinned or type(blob) is not bytes \
                or len(blob) > MAX_ARGS:
            return False
        q = self.calls.actors.get(call.actor_id)
        executor = q.executor if q is not None else None
        if executor is None or executor.actor_id not in self.open or self.rt.in_loop() or in_asyncio():
            return False  # (code in an event loop never waits for the call in a blocking get)
        with self._lock:
            self.held[threading.get_ident()] = (call, perf_counter())
            start, self._ticking = not self._ticking, True
        if start:
            self.rt.soon(self.calls.nursery.start_soon, self._tick)
        return True

    def flush(self) -> None:
        """Send this thread's held call the usual way (another tray call of the thread comes next)."""
        with self._lock:
            held = self.held.pop(threading.get_ident(), None)
        if held is not None:
            call = held[0]
            if not self.calls.send_call_now(call):
                self.rt.soon(self.calls.submit_call, call)

    def waited(self, ref: ObjectRef) -> ActorCall | None:
        """``tray.get(ref)`` finds ``ref`` pending: the call this thread held that makes it
        (for ``call``); else a held call goes the usual way, and the actor of the thread's
        last call is asked for a lane if ``ref`` is that call's result."""
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
        return held[0]

    def _want(self, actor_id: str) -> None:
        """Ask the actor's executor for a lane, once."""
        q = self.calls.actors.get(actor_id)
        executor = q.executor if q is not None else None
        if executor is None or executor.actor_id in self.asked or len(self.asked) >= MAX_LANES:
            return
        self.asked.add(executor.actor_id)
        with contextlib.suppress(RuntimeError):
            self.rt.soon(self.calls.nursery.start_soon, self._open, q, executor)

    def call(self, call: ActorCall) -> None:
        """Send a held call down its lane and read the reply, which resolves its refs; or,
        if that cannot be, send it (or leave its reply) to the loop."""
        calls, rt = self.calls, self.rt
        q = calls.actors.get(call.actor_id)
        executor = q.executor if q is not None else None
        lane = self.open.get(executor.actor_id) if executor is not None else None
        if q is None or executor is None or lane is None or lane.dead or not lane.lock.acquire(blocking=False):
            self._send_usual(call)
            return
        call_id = calls.claim_lane(q, executor, call)
        if call_id is None:
            lane.lock.release()
            self._send_usual(call)
            return
        sent = False
        got = bytearray()
        try:
            send_message(lane.sock, (call_id, call.wire(), rt.system.uid))
            sent = True
            reply = read_message(lane.sock, got)
        except (TimeoutError, KeyboardInterrupt):
            if sent:  # the loop reads the reply; the caller waits for it the usual way
                with contextlib.suppress(RuntimeError):
                    rt.soon(calls.nursery.start_soon, self._finish, lane, q, call_id, got)
            else:  # cut short while it went: the actor reads no call from a lane cut mid-message
                self._drop(lane)
                if calls.unclaim(q, call_id):
                    self._send_usual(call)
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                raise
            return
        except (OSError, EOFError, pickle.UnpicklingError):  # its actor died: answered as a call in flight then
            self._drop(lane)
            return
        lane.lock.release()
        if reply is not FAR:
            calls.lane_done(q, call_id, reply)

    def _send_usual(self, call: ActorCall) -> None:
        if not self.calls.send_call_now(call):
            self.rt.soon(self.calls.submit_call, call)

    def _drop(self, lane: Lane) -> None:
        """A lane that broke: closed, and forgotten."""
        if self.open.get(lane.executor_id) is lane:
            del self.open[lane.executor_id]
        lane.close()
        with contextlib.suppress(RuntimeError):
            lane.lock.release()

    # ------------------------------------------------------------------- loop

    async def _tick(self) -> None:
        """While calls are held: send those held for ``HOLD_S`` the usual way."""
        while True:
            await trio.sleep(HOLD_S)
            now = perf_counter()
            with self._lock:
                stale = [t for t, (_, since) in self.held.items() if now - since >= HOLD_S]
                late = [self.held.pop(t)[0] for t in stale]
                if not self.held and not late:
                    self._ticking = False
                    return
            for call in late:
                self.calls.submit_call(call)

    async def _open(self, q: _ActorQueue, executor: ActorRef) -> None:
        """Ask ``executor`` for a lane and connect it (a refusal, or an actor on another machine: none)."""
        try:
            offer = await executor.open_lane.ask()
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
        sock.settimeout(PATIENCE_S)
        if q.executor is not executor or q.dead is not None or self.rt.closed:
            sock.close()
            return
        self.open[executor.actor_id] = Lane(sock, executor.actor_id)

    async def _finish(self, lane: Lane, q: _ActorQueue, call_id: int, got: bytearray) -> None:
        """Read a reply its caller stopped waiting for, and answer its call with it."""
        try:
            while True:
                try:
                    reply = read_message(_NonBlocking(lane.sock), got)
                    break
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(lane.sock)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._drop(lane)
            return
        lane.lock.release()
        if reply is not FAR:
            self.calls.lane_done(q, call_id, reply)

    def lost(self, executor_id: str) -> None:
        """The executor is gone: its lane closes (now, or by the thread reading it)."""
        self.asked.discard(executor_id)
        lane = self.open.pop(executor_id, None)
        if lane is not None:
            lane.dead = True
            if lane.lock.acquire(blocking=False):
                lane.close()

    def close(self) -> None:
        for lane in list(self.open.values()):
            lane.close()
        self.open.clear()


class _NonBlocking:
    """A socket's reads that do not block (the loop's, on a lane that is otherwise blocking)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, n: int) -> bytes:
        return self._sock.recv(n, socket.MSG_DONTWAIT)


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
