"""Bulk: large payloads in chunks over a data connection beside the control connection.

A message whose out-of-band buffers are big travels here, chunk by chunk, while its
place in the sender's order is kept by a small placeholder on the control connection;
so heartbeats and small asks never queue behind a large transfer. The receiver grants
credits as it consumes chunks; the sender never has more than ``credits`` chunks in
flight, so a slow receiver bounds the memory a transfer holds.

Data-connection frames: a msgpack header frame ``[START, id, envelope]``,
``[CHUNK, id, n]`` (followed by an ``n``-byte body frame) or ``[CREDIT, n]``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import msgpack
import trio
from trio.lowlevel import current_task, reschedule, wait_task_rescheduled

from ._base import Stream
from ._codec import ProtocolError, alloc, decode_envelope
from ._frames import FrameDecoder, frame_header

if TYPE_CHECKING:
    from ._peer import Peer

START, CHUNK, CREDIT = 1, 2, 3


class _Outgoing:
    __slots__ = ("id", "env", "chunks")

    def __init__(self, bulk_id: int, env: bytes, bufs: list[memoryview], chunk: int) -> None:
        self.id = bulk_id
        self.env = env
        self.chunks: deque[memoryview] = deque(b[i : i + chunk] for b in bufs for i in range(0, b.nbytes, chunk))


class _Incoming:
    __slots__ = ("env", "bufs", "i", "pos")

    def __init__(self, env: list, into: list[Any] | None = None) -> None:
        self.env = env
        sizes = env[5]
        if into is not None and [memoryview(b).nbytes for b in into] == list(sizes):
            self.bufs = list(into)  # a reply its asker wants in its own memory (ask_into)
        else:
            self.bufs = [alloc(n) for n in sizes]
        self.i = 0
        self.pos = 0
        self._skip_empty()

    def _skip_empty(self) -> None:
        while self.i < len(self.bufs) and self.pos == len(self.bufs[self.i]):
            self.i += 1
            self.pos = 0

    @property
    def complete(self) -> bool:
        return self.i >= len(self.bufs)

    def target(self, n: int) -> memoryview | None:
        """Where the next ``n``-byte chunk goes, if it fits the current buffer."""
        if self.complete:
            return None
        buf = self.bufs[self.i]
        if self.pos + n > len(buf):
            return None
        return memoryview(buf)[self.pos : self.pos + n]

    def add(self, data: Any) -> None:
        if self.complete:
            raise ProtocolError("bulk chunk beyond the announced sizes")
        buf = self.bufs[self.i]
        n = len(data)
        if self.pos + n > len(buf):
            raise ProtocolError("bulk chunk overruns its buffer")
        exporter = buf.obj if isinstance(buf, memoryview) else buf
        if not (isinstance(data, memoryview) and data.obj is exporter):  # not already received in place
            buf[self.pos : self.pos + n] = data
        self.pos += n
        self._skip_empty()


class BulkChannel:
    """The data connection of one :class:`~tray.transport._peer.Peer`, both directions."""

    def __init__(self, peer: Peer, stream: Stream) -> None:
        self.peer = peer
        self.stream = stream
        cfg = peer.config
        self.chunk = cfg.chunk
        self.credits = cfg.credits
        self.grant = 0  # credits to send back
        self.queue: deque[_Outgoing] = deque()
        self.incoming: dict[int, _Incoming] = {}
        self._writer: trio.lowlevel.Task | None = None
        self._parked = False
        self._dec = FrameDecoder(max(cfg.max_frame, cfg.chunk + 1024))
        self.scope = trio.CancelScope()
        self._pending: deque[Any] = deque()
        self._current = 0

    def take_over(self, dec: FrameDecoder, frames: deque) -> None:
        """Continue from the handshake's decoder (it may hold frames already)."""
        dec.max_frame = self._dec.max_frame
        self._dec = dec
        self._pending = frames

    def send(self, bulk_id: int, env: bytes, bufs: list[memoryview]) -> None:
        self.queue.append(_Outgoing(bulk_id, env, bufs, self.chunk))
        self._wake()

    def _wake(self) -> None:
        if self._parked:
            self._parked = False
            reschedule(self._writer)  # type: ignore[arg-type]  # parked: the writer task is set

    async def run(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.peer._guard, self._write_loop)
                await self.peer._guard(self._read_loop)

    async def _write_loop(self) -> None:
        self._writer = current_task()
        pack = msgpack.packb
        while True:
            out: list[Any] = []
            if self.grant:
                h = pack([CREDIT, self.grant])
                self.grant = 0
                out.append(frame_header(len(h)) + h)
            while self.queue and self.credits:
                m = self.queue[0]
                if m.env is not None:
                    h = pack([START, m.id, m.env], use_bin_type=True)
                    out.append(frame_header(len(h)) + h)
                    m.env = None  # type: ignore[assignment]
                if not m.chunks:
                    self.queue.popleft()
                    continue
                c = m.chunks.popleft()
                self.credits -= 1
                h = pack([CHUNK, m.id, c.nbytes])
                out += [frame_header(len(h)) + h, frame_header(c.nbytes), c]
                if not m.chunks:
                    self.queue.popleft()
            if out:
                await self.stream.send_messages([out])
                continue
            self._parked = True
            await wait_task_rescheduled(self._abort)

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _read_loop(self) -> None:
        from ._peer import PeerLost

        dec, stream = self._dec, self.stream
        scratch = memoryview(bytearray(256 * 1024))
        frames: deque[Any] = self._pending
        expect: _Incoming | None = None
        max_message = self.peer.config.max_message
        while True:
            while frames:
                f = frames.popleft()
                if expect is not None:  # the body of a CHUNK
                    inc, expect = expect, None
                    inc.add(f)
                    self.grant += 1
                    self._wake()
                    if inc.complete:
                        bulk_id = self._current
                        del self.incoming[bulk_id]
                        await self.peer.bulk_arrived(bulk_id, inc.env, inc.bufs)
                    continue
                try:
                    h = msgpack.unpackb(f, raw=False)
                except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds on hostile bytes
                    raise ProtocolError(f"undecodable bulk header: {exc}") from None
                if type(h) is not list or not h or type(h[0]) is not int:
                    raise ProtocolError("bad bulk header")
                if h[0] == CREDIT and len(h) == 2 and type(h[1]) is int and h[1] > 0:
                    self.credits += h[1]
                    self._wake()
                elif h[0] == START and len(h) == 3 and type(h[1]) is int and type(h[2]) is bytes:
                    env = decode_envelope(h[2], max_message)
                    inc = self.incoming[h[1]] = _Incoming(env, self.peer.reply_buffers(env))
                    if inc.complete:  # zero-length buffers only
                        del self.incoming[h[1]]
                        await self.peer.bulk_arrived(h[1], inc.env, inc.bufs)
                elif h[0] == CHUNK and len(h) == 3 and h[1] in self.incoming and type(h[2]) is int:
                    expect = self.incoming[h[1]]
                    self._current = h[1]
                    target = expect.target(h[2])
                    if target is not None and not frames:
                        dec.receive_next_into(target)
                else:
                    raise ProtocolError(f"unexpected bulk frame {h!r:.80}")
            pv = dec.pending_view()
            if pv is not None:
                n = await stream.receive_into(pv)
                if not n:
                    raise PeerLost("data connection closed by peer")
                f = dec.filled(n)
                if f is not None:
                    frames.append(f)
            else:
                n = await stream.receive_into(scratch)
                if not n:
                    raise PeerLost("data connection closed by peer")
                frames.extend(dec.feed(scratch[:n]))
            self.peer.last_recv = trio.current_time()
