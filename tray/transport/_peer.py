"""One connection to a peer system: handshake, framing, batching, heartbeats, dispatch.

Everything a peer sends is handled by one reader task, in order (per-sender FIFO), with
no task spawned per message: a tell or ask goes straight into the target's mailbox (or,
to an idle actor with a sync handler, is handled by the reader on the spot: ``Cell.deliver``),
and its reply is queued by the actor itself. Outgoing messages are queued without awaiting
and written by one writer task, many per write; another thread may write a small message
itself while the writer is idle (``send_from_thread``), which spares the round trip
through the loop. Any protocol violation ends this one
connection: its pending asks fail with ``ActorDiedError`` and the proxies of its actors
send ``Down`` to their monitors; the system goes on serving its other peers.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import weakref
from collections import deque
from time import perf_counter as _perf_counter
from typing import TYPE_CHECKING, Any

import msgpack
import trio
from outcome import Error, Value
from trio.lowlevel import ParkingLot, current_task, reschedule, wait_task_rescheduled

from ..actors._crossing import wake
from ..actors._system import remote_resolver
from ..exceptions import ActorDiedError, MailboxFull, RayError, RayTaskError, TrayInternalError
from ._base import Stream
from ._bulk import BulkChannel
from ._codec import Kind, ProtocolError, alloc, decode_envelope, dumps, encode, loads, packb
from ._frames import FrameDecoder, FrameError, frame_header
from ._mac import compare_digest, hmac_sha256
from ._remote import PeerWatcher, RemoteCell, RemoteReply, _Waiter

if TYPE_CHECKING:
    from ._network import Network

log = logging.getLogger("tray.transport")

MAGIC = "tray/1"
EAGER_GAP = 50e-6  # messages closer together than this are batched by the writer
HANDSHAKE_MAX_FRAME = 4096
READ_SIZE = 256 * 1024


class NoConnection(str):
    """Erlang's exit reason ``noconnection`` (the connection to the actor's system is lost):
    equal to that string, and saying, when printed, why the connection ended."""

    __slots__ = ("why",)
    why: str

    def __new__(cls, why: str = "") -> NoConnection:
        self = super().__new__(cls, "noconnection")
        self.why = why
        return self

    def __str__(self) -> str:
        return f"noconnection: {self.why}" if self.why else "noconnection"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce__(self) -> tuple:
        return (NoConnection, (self.why,))


class HandshakeError(TrayInternalError):
    """The other side is not a tray system of this cluster (wrong token, bad protocol)."""


class PeerLost(TrayInternalError):
    """The connection ended (closed, reset, silent too long, or broke the protocol)."""


def _mac(token: bytes, label: bytes, a: bytes, b: bytes) -> bytes:
    return hmac_sha256(token, label + a + b)


def _safe_dumps(obj: Any) -> tuple[bytes, list[memoryview]]:
    """Pickle an exit reason or exception, degrading to its description if it will not pickle."""
    try:
        return dumps(obj)
    except Exception:  # noqa: BLE001 - user objects fail to pickle in any way; degrade to a description
        if isinstance(obj, BaseException):
            return dumps(RayError(f"{type(obj).__name__}: {obj} (the original could not be pickled)"))
        return dumps(repr(obj))


class Peer:
    """A connection to one peer system (either side may have opened it)."""

    def __init__(self, network: Network, address: str | None) -> None:
        self.network = network
        self.config = network.config
        self.address = address  # the peer's listening address, if it has one
        self.uid: str | None = None  # the peer system's uid, known after the handshake
        self.stream: Stream | None = None
        self.reason: str | None = None  # why the connection ended; None while it lives
        self.ready = trio.Event()
        self.pending: dict[int, _Waiter] = {}
        # Proxies of this peer's actors: weakly held, but strongly while watched (their
        # death must reach the watchers even when nobody holds the ref any more).
        self.cells: weakref.WeakValueDictionary[str, RemoteCell] = weakref.WeakValueDictionary()
        self.watched: dict[str, RemoteCell] = {}
        self.watcher = PeerWatcher(self)
        self._corr = itertools.count(1)
        self.out: list[list[Any]] = []
        self.out_bytes = 0
        self._writer: trio.lowlevel.Task | None = None
        self._writer_parked = False  # it waits for messages, and nobody has woken it yet
        self._writer_asleep = False  # it waits for messages
        # Held while the queue or the writer's state changes, and while another thread
        # writes to the socket (send_from_thread): bytes from two threads never interleave.
        self._send_lock = threading.Lock()
        self._token = trio.lowlevel.current_trio_token()
        self._last_eager = 0.0
        self._try_send: Any = None
        self._drained = ParkingLot()
        self._dec = FrameDecoder(HANDSHAKE_MAX_FRAME)
        self._frames: deque[bytes | bytearray | memoryview] = deque()
        self._scratch_view = memoryview(bytearray(READ_SIZE))
        self._env: list | None = None
        self._bufs: list[Any] = []
        self._cur: bytearray | None = None
        self._cur_pos = 0
        self._sizes: list[int] = []
        self.last_recv = 0.0
        self.sent_since_tick = False
        self.busy = False  # the reader waits on a full mailbox (not silence)
        self.scope = trio.CancelScope()
        self._transport: Any = None  # set when we dialled
        self.link = b""  # names this connection to its data connection
        self.bulk: BulkChannel | None = None
        self._bulk_ids = itertools.count(1)
        self._blocked: dict[Any, deque] = {}  # per destination: messages waiting behind a bulk one
        self._bulk_ready: dict[int, tuple[list, list]] = {}
        self._draining: set[Any] = set()

    def __repr__(self) -> str:
        return f"<Peer {self.uid or '?'} {self.address or '(inbound)'}{' dead' if self.reason else ''}>"

    def next_corr(self) -> int:
        return next(self._corr)

    # ----------------------------------------------------------- life cycle

    async def run_outbound(self, transport: Any) -> None:
        """Connect to ``self.address``, authenticate, and serve until the connection ends."""
        why = "closed"
        self._transport = transport
        try:
            with self.scope:
                try:
                    with trio.fail_after(self.config.connect_timeout):
                        self.stream = await transport.connect(self.address)
                    with trio.fail_after(self.config.handshake_timeout):
                        await self._handshake_client()
                except (OSError, trio.TooSlowError, HandshakeError, FrameError, ProtocolError, PeerLost) as exc:
                    why = f"cannot connect to {self.address}: {type(exc).__name__}: {exc}"
                    log.warning("%s", why)
                    return
                why = await self._serve()
        finally:
            await self._closed(why)

    async def run_inbound(self, stream: Stream) -> None:
        """Authenticate a connection someone opened to us, and serve it until it ends."""
        self.stream = stream
        why = "closed"
        try:
            with self.scope:
                try:
                    with trio.fail_after(self.config.handshake_timeout):
                        owner = await self._handshake_server()
                except (trio.TooSlowError, HandshakeError, FrameError, ProtocolError, PeerLost, OSError) as exc:
                    why = f"refused an incoming connection: {type(exc).__name__}: {exc}"
                    # a peer that hung up mid-handshake (it was shutting down) is no threat
                    quiet = isinstance(exc, (PeerLost, OSError)) and not isinstance(exc, HandshakeError)
                    log.log(logging.INFO if quiet else logging.WARNING, "%s", why)
                    return
                if owner is not None:  # the data connection of an existing peer
                    self.stream = None
                    await owner.serve_bulk(stream, self._dec, self._frames)
                    return
                why = await self._serve()
        finally:
            await self._closed(why)

    async def _serve(self) -> str:
        self._dec.max_frame = self.config.max_frame
        self.last_recv = trio.current_time()
        self.network.peer_ready(self)
        self.ready.set()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._guard, self._write_loop)
            nursery.start_soon(self._guard, self._heartbeat_loop)
            if self._transport is not None:  # we dialled: we also open the data connection
                nursery.start_soon(self._guard, self._open_bulk)
            else:
                self.network.links[self.link] = self
            await self._guard(self._read_loop)
        return self.reason or "closed"

    async def _guard(self, loop: Any) -> None:
        """Run one of the connection's loops; whatever ends it ends the connection, only."""
        why: str
        try:
            await loop()
            why = "closed"
        except PeerLost as exc:
            why = str(exc)
        except (FrameError, ProtocolError) as exc:
            log.warning("dropping the connection to %r: %s", self, exc)
            why = f"protocol error: {exc}"
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            why = f"connection error: {exc!r}"
        except Exception as exc:
            log.error("dropping the connection to %r after an internal error", self, exc_info=exc)
            why = f"internal error: {exc!r}"
        self.close(why)

    def close(self, why: str) -> None:
        """End the connection now (from any task)."""
        self._set_reason(why)
        self.scope.cancel()

    def _set_reason(self, why: str) -> None:
        """The connection ends: no other thread writes to its socket from now on."""
        with self._send_lock:
            if self.reason is None:
                self.reason = why
            self._try_send = None

    async def _closed(self, why: str) -> None:
        """The connection is over: fail what waits on it; report its actors down."""
        self._set_reason(why)
        self.ready.set()
        why = self.reason  # type: ignore[assignment]  # _set_reason just set it
        self.network.peer_gone(self)
        self.network.links.pop(self.link, None)
        if self.bulk is not None:
            self.bulk.scope.cancel()
        stream, self.stream = self.stream, None
        if stream is not None:
            with trio.CancelScope(shield=True):
                await stream.aclose()
        err = ActorDiedError(f"lost the connection to peer {self.uid or self.address} ({why})")
        pending, self.pending = self.pending, {}
        for w in pending.values():
            w.resolve(Error(err))
        for cell in list(self.cells.values()) + list(self.watched.values()):
            cell.died(NoConnection(why))
        self.out = []
        self._drained.unpark_all()

    # ----------------------------------------------------------------- bulk

    async def _open_bulk(self) -> None:
        """Dial the data connection (the dialling side of the control connection does)."""
        aux = Peer(self.network, self.address)
        # The peer may send bulk chunks right behind its welcome, in the same read: the
        # handshake's decoder must already take them (this peer proved itself on the
        # control connection; a 4 KiB handshake limit would drop the connection).
        cfg = self.config
        aux._dec = FrameDecoder(max(cfg.max_frame, cfg.chunk + 1024))
        with trio.fail_after(self.config.connect_timeout):
            aux.stream = await self._transport.connect(self.address)
        try:
            with trio.fail_after(self.config.handshake_timeout):
                await aux._handshake_client(link=self.link)
        except BaseException:
            await aux.stream.aclose()
            raise
        await self.serve_bulk(aux.stream, aux._dec, aux._frames)

    async def serve_bulk(self, stream: Stream, dec: FrameDecoder, frames: deque) -> None:
        """Carry this peer's bulk messages over ``stream`` until the peer goes away."""
        if self.reason is not None:
            await stream.aclose()
            return
        bulk = BulkChannel(self, stream)
        bulk.take_over(dec, frames)
        self.bulk = bulk
        try:
            await bulk.run()
        finally:
            self.bulk = None
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def reply_buffers(self, env: list) -> list[Any] | None:
        """Where the asker of a reply wants its buffers received (``ask_into``), if anywhere."""
        if env[0] != Kind.REPLY_OK:
            return None
        waiter = self.pending.get(env[1])
        return waiter.into if waiter is not None else None

    async def bulk_arrived(self, bulk_id: int, env: list, bufs: list) -> None:
        self._bulk_ready[bulk_id] = (env, bufs)
        if env[2] in self._blocked:
            await self._drain(env[2])

    async def _deliver(self, env: list, bufs: list) -> None:
        """Dispatch in order per destination: behind a bulk message still arriving, wait."""
        if self._blocked:
            dst = env[2]
            if env[0] == Kind.BULK:
                self._blocked.setdefault(dst, deque()).append((None, env[1]))
                await self._drain(dst)
                return
            q = self._blocked.get(dst)
            if q is not None:
                q.append((env, bufs))
                return
        elif env[0] == Kind.BULK:
            self._blocked[env[2]] = deque([(None, env[1])])
            await self._drain(env[2])
            return
        await self._dispatch(env, bufs)

    async def _drain(self, dst: Any) -> None:
        if dst in self._draining:
            return
        self._draining.add(dst)
        try:
            q = self._blocked[dst]
            while q:
                env, x = q[0]
                if env is None:  # a bulk placeholder: wait until its data is in
                    ready = self._bulk_ready.pop(x, None)
                    if ready is None:
                        return
                    q.popleft()
                    await self._dispatch(*ready)
                else:
                    q.popleft()
                    await self._dispatch(env, x)
            del self._blocked[dst]
        finally:
            self._draining.discard(dst)

    # ------------------------------------------------------------ handshake

    async def _next_frame(self) -> bytes | bytearray | memoryview:
        while not self._frames:
            await self._fill()
        return self._frames.popleft()

    async def _fill(self) -> None:
        stream = self.stream
        assert stream is not None
        dec = self._dec
        pv = dec.pending_view()
        if pv is not None:
            n = await stream.receive_into(pv)
            if not n:
                raise PeerLost("connection closed by peer")
            self.last_recv = trio.current_time()
            f = dec.filled(n)
            if f is not None:
                self._frames.append(f)
            return
        view = self._scratch_view
        n = await stream.receive_into(view)
        if not n:
            raise PeerLost("connection closed by peer")
        self.last_recv = trio.current_time()
        self._frames.extend(dec.feed(view[:n]))

    async def _send_raw(self, obj: Any) -> None:
        body = msgpack.packb(obj, use_bin_type=True)
        assert self.stream is not None
        await self.stream.send_messages([[frame_header(len(body)) + body]])

    async def _recv_raw(self) -> list:
        try:
            obj = msgpack.unpackb(await self._next_frame(), raw=False)
        except (ValueError, msgpack.UnpackException, TypeError) as exc:
            raise HandshakeError(f"bad handshake frame ({exc})") from None
        if type(obj) is not list or not obj or obj[0] != MAGIC:
            raise HandshakeError("not a tray peer (bad handshake)")
        return obj

    async def _handshake_server(self) -> Peer | None:
        """Authenticate the client; return the peer whose data connection this is, if it is one."""
        network = self.network
        nonce_s = os.urandom(16)
        await self._send_raw([MAGIC, "challenge", nonce_s])
        hello = await self._recv_raw()
        if len(hello) != 7 or hello[1] != "hello" or not all(isinstance(x, bytes) for x in hello[2:4]):
            raise HandshakeError("malformed hello")
        _, _, nonce_c, mac_c, uid, address, link = hello
        if not isinstance(uid, str) or not (address is None or isinstance(address, str)):
            raise HandshakeError("malformed hello")
        if not compare_digest(mac_c, _mac(network.key, b"c", nonce_s, nonce_c)):
            log.warning("refused a connection from system %s: wrong cluster token", uid)
            await self._send_raw([MAGIC, "refused", "wrong cluster token"])
            raise HandshakeError("wrong cluster token")
        owner = None
        if link is not None:
            owner = network.links.get(link) if isinstance(link, bytes) else None
            if owner is None or owner.uid != uid or owner.bulk is not None:
                raise HandshakeError("data connection for no known control connection")
        self.uid, self.address = uid, address
        self.link = os.urandom(16)
        await self._send_raw(
            [
                MAGIC,
                "welcome",
                _mac(network.key, b"s", nonce_c, nonce_s),
                network.system.uid,
                network.address,
                self.link,
            ]
        )
        return owner

    async def _handshake_client(self, link: bytes | None = None) -> None:
        network = self.network
        ch = await self._recv_raw()
        if len(ch) != 3 or ch[1] != "challenge" or not isinstance(ch[2], bytes):
            raise HandshakeError("malformed challenge")
        nonce_s = ch[2]
        nonce_c = os.urandom(16)
        mac_c = _mac(network.key, b"c", nonce_s, nonce_c)
        await self._send_raw([MAGIC, "hello", nonce_c, mac_c, network.system.uid, network.address, link])
        w = await self._recv_raw()
        if len(w) >= 3 and w[1] == "refused":
            raise HandshakeError(f"the peer refused us: {w[2]}")
        if len(w) != 6 or w[1] != "welcome" or not isinstance(w[2], bytes) or not isinstance(w[3], str):
            raise HandshakeError("malformed welcome")
        if not compare_digest(w[2], _mac(network.key, b"s", nonce_c, nonce_s)):
            raise HandshakeError("the peer does not know the cluster token")
        self.uid = w[3]
        self.link = w[5]

    # -------------------------------------------------------------- sending

    def post(self, frames: list[Any], nbytes: int) -> None:
        """Queue one message's frames; the writer sends them with others in one write.

        When the writer is idle and nothing went out in the last ``EAGER_GAP`` seconds,
        the message goes out at once from the caller's task (no task switch: that is
        what makes a lone ask fast); in a burst (pipelined tells), messages queue for
        the writer, which sends them all in one write.
        """
        if self.reason is not None:
            return
        self.sent_since_tick = True
        with self._send_lock:
            if self._writer_parked and self._try_send is not None and len(frames) == 1:
                data = frames[0]
                n = self._write_now(data)
                if n == len(data):
                    return
                if n:
                    frames = [data[n:]]
                    nbytes -= n
            self.out.append(frames)
            self.out_bytes += nbytes
            if self._writer_parked:
                self._writer_parked = self._writer_asleep = False
                reschedule(self._writer)  # type: ignore[arg-type]  # parked: the writer task is set

    def send_from_thread(self, data: bytes) -> bool:
        """From a thread other than the loop's: write one small message's frame now, if
        nothing is queued before it (the writer is idle); False, having sent nothing, if
        it must go through the loop instead. Keeping order with what that thread sent
        through the loop is the caller's part: it calls this only once that has gone."""
        with self._send_lock:
            if not self._writer_parked or self._try_send is None or self.reason is not None:
                return False
            n = self._write_now(data)
            if n == 0:
                return False
            self.sent_since_tick = True
            if n < len(data):  # the rest goes first, from the writer
                self.out.append([data[n:]])
                self.out_bytes += len(data) - n
                self._writer_parked = False
                wake(self._token, self._wake_writer)  # a finished loop took the connection with it
            return True

    def _write_now(self, data: bytes) -> int:
        """Under the send lock, the writer idle: write what the socket takes of ``data`` now,
        unless the last such write was under EAGER_GAP ago (a burst, which the writer batches).
        The bytes written; 0 when full or broken (the writer will find out)."""
        now = _perf_counter()
        if now - self._last_eager < EAGER_GAP:
            return 0
        self._last_eager = now
        try:
            return self._try_send(data)
        except OSError:
            return 0

    def _wake_writer(self) -> None:
        with self._send_lock:
            if self._writer_asleep:
                self._writer_asleep = False
                reschedule(self._writer)  # type: ignore[arg-type]  # parked: the writer task is set

    def post_message(self, kind: int, corr: int, dst: str | None, head: Any, payload: bytes | None, bufs: list) -> None:
        if bufs and self.bulk is not None and self.reason is None:
            total = sum(b.nbytes for b in bufs)
            if total >= self.config.bulk_threshold:  # data connection; a placeholder keeps its place
                bulk_id = next(self._bulk_ids)
                env = packb([kind, corr, dst, head, payload, [b.nbytes for b in bufs]])
                self.post(encode(Kind.BULK, bulk_id, dst, None, None, [], 0), 64)
                self.bulk.send(bulk_id, env, bufs)
                return
        frames = encode(kind, corr, dst, head, payload, bufs, self.config.max_frame)
        nbytes = len(frames[0])
        for b in bufs:
            nbytes += b.nbytes
        self.post(frames, nbytes)

    def post_system_msg(self, dst: str, msg: tuple) -> None:
        payload, bufs = _safe_dumps(msg)
        self.post_message(Kind.SYSTEM, 0, dst, None, payload, bufs)

    def send_died(self, uid: str, reason: Any) -> None:
        payload, bufs = _safe_dumps(reason)
        self.post_message(Kind.DIED, 0, uid, None, payload, bufs)

    def send_reply(self, corr: int, result: Value | Error) -> None:
        if self.reason is not None:
            return
        if type(result) is Value:
            try:
                payload, bufs = dumps(result.value)
            except Exception as exc:  # noqa: BLE001 - any pickling failure becomes the caller's error
                err = RayTaskError.from_exception(exc, "pickling the reply")
                payload, bufs = _safe_dumps(err)
                self.post_message(Kind.REPLY_ERR, corr, None, None, payload, bufs)
                return
            self.post_message(Kind.REPLY_OK, corr, None, None, payload, bufs)
        else:
            payload, bufs = _safe_dumps(result.error)
            self.post_message(Kind.REPLY_ERR, corr, None, None, payload, bufs)

    async def wait_drained(self) -> None:
        """Wait until the queued outgoing bytes are under the high-water mark."""
        while self.out_bytes > self.config.high_water and self.reason is None:
            await self._drained.park()

    async def _write_loop(self) -> None:
        self._writer = current_task()
        stream = self.stream
        assert stream is not None
        self._try_send = getattr(stream, "try_send", None)
        lock = self._send_lock
        while True:
            with lock:
                batch, self.out = self.out, []
                self.out_bytes = 0
                if not batch:
                    self._writer_parked = self._writer_asleep = True
            if not batch:
                await wait_task_rescheduled(self._abort_park)
                continue
            if self._drained:
                self._drained.unpark_all()
            await stream.send_messages(batch)

    def _abort_park(self, _: Any) -> trio.lowlevel.Abort:
        with self._send_lock:
            self._writer_parked = self._writer_asleep = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        limit = self.config.silence_limit
        while True:
            await trio.sleep(interval)
            if not self.sent_since_tick:
                self.post_message(Kind.HEARTBEAT, 0, None, None, None, [])
            self.sent_since_tick = False
            if self.busy:
                self.last_recv = trio.current_time()
            elif trio.current_time() - self.last_recv > limit:
                log.warning("peer %r missed its heartbeats for %.3g s: declaring it dead", self, limit)
                raise PeerLost(f"no heartbeat for {limit} s")

    # -------------------------------------------------------------- reading

    async def _read_loop(self) -> None:
        frames = self._frames
        max_message = self.config.max_message
        while True:
            while frames:
                f = frames.popleft()
                if self._env is None:
                    env = decode_envelope(f, max_message)
                    if env[5]:
                        self._start_buffers(env)
                    else:
                        await self._deliver(env, [])
                else:
                    self._add_buffer_frame(f)
                    if not self._sizes and self._cur is None:
                        env, bufs = self._env, self._bufs
                        self._env, self._bufs = None, []
                        await self._deliver(env, bufs)
            await self._fill()

    def _start_buffers(self, env: list) -> None:
        self._env = env
        self._bufs = []
        self._sizes = list(reversed(env[5]))
        self._cur = None

    def _add_buffer_frame(self, f: bytes | bytearray | memoryview) -> None:
        n = len(f)
        if self._cur is None:
            size = self._sizes.pop()
            if n == size:
                self._bufs.append(f)
                return
            if n > size:
                raise ProtocolError("buffer frame longer than announced")
            self._cur, self._cur_pos = alloc(size), 0
        cur, pos = self._cur, self._cur_pos
        if pos + n > len(cur):
            raise ProtocolError("buffer chunk overruns its buffer")
        cur[pos : pos + n] = f
        self._cur_pos = pos + n
        if self._cur_pos == len(cur):
            self._bufs.append(cur)
            self._cur = None

    def _loads(self, payload: bytes | None, bufs: list) -> Any:
        if payload is None:
            raise ProtocolError("message without a payload")
        tok = remote_resolver.set(self.network.resolver_for(self))
        try:
            return loads(payload, bufs)
        finally:
            remote_resolver.reset(tok)

    async def _dispatch(self, env: list, bufs: list) -> None:
        kind, corr, dst, head, payload, _ = env
        system = self.network.system
        if kind == Kind.TELL:
            cell = system.cell(dst)
            try:
                args, kwargs = self._loads(payload, bufs)
            except Exception as exc:  # noqa: BLE001 - a bad payload is logged and dropped, never kills the link
                log.warning("from %r: a tell %s to %s failed to unpickle: %r", self, head, dst, exc)
                return
            if cell is None:
                self.network.dead_letter(dst, head, args, kwargs, "no such actor (it is dead or never was)")
                return
            if head not in cell.proto:
                log.warning("from %r: %s has no method %r; tell dropped", self, cell.ref, head)
                return
            msg: tuple[Any, Any, Any, RemoteReply | None] = (head, args, kwargs, None)
            if not cell.deliver(msg):
                try:
                    self.busy = True
                    await cell.admit(msg)
                except RayError as exc:
                    log.debug("tell to %r from %r not queued: %s", cell.ref, self, exc)
                finally:
                    self.busy = False
        elif kind == Kind.ASK:
            reply = RemoteReply(self, corr)
            cell = system.cell(dst)
            if cell is None:
                reply.send(Error(ActorDiedError(f"actor {dst} is dead (or never was); {head} not handled")))
                return
            try:
                args, kwargs = self._loads(payload, bufs)
            except Exception as exc:  # noqa: BLE001 - a bad payload fails only its own call
                log.warning("from %r: an ask %s to %r failed to unpickle: %r", self, head, cell.ref, exc)
                reply.send(Error(RayTaskError.from_exception(exc, f"unpickling the arguments of {cell.ref!r}.{head}")))
                return
            if head not in cell.proto:
                reply.send(Error(AttributeError(f"{cell.ref!r} has no public method {head!r}")))
                return
            msg = (head, args, kwargs, reply)
            if not cell.deliver(msg):
                try:
                    self.busy = True
                    await cell.admit(msg)
                except (RayError, MailboxFull) as exc:
                    reply.send(Error(exc))
                finally:
                    self.busy = False
        elif kind == Kind.REPLY_OK or kind == Kind.REPLY_ERR:
            waiter = self.pending.pop(corr, None)
            if waiter is None:
                return  # its asker gave up (timeout, cancel)
            try:
                value = self._loads(payload, bufs)
            except Exception as exc:  # noqa: BLE001 - a bad payload fails only its own call
                log.warning("from %r: a reply failed to unpickle: %r", self, exc)
                waiter.resolve(Error(RayTaskError.from_exception(exc, "unpickling the reply")))
                return
            if kind == Kind.REPLY_OK:
                waiter.resolve(Value(value))
            else:
                if not isinstance(value, BaseException):
                    value = RayError(f"remote error: {value!r}")
                waiter.resolve(Error(value))
        elif kind == Kind.HEARTBEAT:
            pass
        elif kind == Kind.WATCH:
            cell = system.cell(dst)
            if cell is None:
                self.send_died(dst, "noproc")
            else:
                cell.watchers.add(self.watcher)
        elif kind == Kind.DIED:
            rc = self.cells.get(dst)
            if rc is not None:
                try:
                    reason = self._loads(payload, bufs)
                except Exception as exc:  # noqa: BLE001 - the reason is informational; describe it instead
                    reason = f"died (reason could not be unpickled: {exc!r})"
                rc.died(reason)
        elif kind == Kind.SYSTEM:
            cell = system.cell(dst)
            if cell is None:
                return
            try:
                msg = self._loads(payload, bufs)
            except Exception as exc:  # noqa: BLE001 - a bad payload is logged and dropped, never kills the link
                log.warning("from %r: a system message to %r failed to unpickle: %r", self, cell.ref, exc)
                return
            if type(msg) is not tuple or not msg or msg[0] not in ("stop", "exit", "down", "kill"):
                raise ProtocolError(f"bad system message {msg!r:.100}")
            if msg[0] == "kill":
                cell.kill()
            else:
                cell.post_system(msg)
        elif kind == Kind.SPAWN or kind == Kind.LOOKUP:
            self.network.nursery.start_soon(self._serve_request, kind, corr, head, payload, bufs)
        elif kind == Kind.BULK:  # pragma: no cover - _deliver handles placeholders
            raise ProtocolError("misplaced bulk placeholder")
        elif kind == Kind.BYE:
            raise PeerLost("the peer closed the connection")
        else:  # pragma: no cover - decode_envelope rejects unknown kinds
            raise ProtocolError(f"unexpected message kind {kind}")

    async def _serve_request(self, kind: int, corr: int, head: Any, payload: bytes | None, bufs: list) -> None:
        """Spawn and lookup, which may take time, run in their own task."""
        system = self.network.system
        reply = RemoteReply(self, corr)
        try:
            if kind == Kind.LOOKUP:
                if not isinstance(head, str):
                    raise TypeError("lookup needs a name")
                reply.send(Value(system.lookup(head)))
                return
            cls, args, kwargs, opts = self._loads(payload, bufs)
            ref = await system.spawn(cls, *args, **opts, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any spawn failure is the asker's error
            if not isinstance(exc, RayError):
                exc = RayTaskError.from_exception(exc, "remote spawn")
            reply.send(Error(exc))
        else:
            reply.send(Value(ref))
