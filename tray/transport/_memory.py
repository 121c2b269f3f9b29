"""An in-memory transport that can delay, drop, duplicate, reorder and partition.

Faults apply to whole messages (never to bytes within one), so framing stays intact and
what a protocol sees is what a real network can do to messages: loss, duplication,
reordering, delay and partitions. Every choice comes from one seeded ``random.Random``
and the trio clock, so under ``MockClock`` a run replays exactly from its seed.

``hold=True`` stops automatic delivery: messages wait in :attr:`MemoryNetwork.in_flight`
until a test delivers, drops or duplicates them one by one.
"""

from __future__ import annotations

import errno
import random
from typing import Any

import attrs
import trio
from trio.lowlevel import ParkingLot

from ._base import Handler, Listener, Stream, Transport

__all__ = ["FaultPlan", "InFlight", "MemoryNetwork", "MemoryTransport"]


@attrs.define
class FaultPlan:
    """Per-message fault probabilities and delay range (seconds), for every link."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)


class _Pipe:
    """One direction of a connection: bytes from ``src`` host to ``dst`` host."""

    def __init__(self, net: MemoryNetwork, src: str, dst: str) -> None:
        self.net, self.src, self.dst = net, src, dst
        self.buf = bytearray()
        self.closed = False
        self.lot = ParkingLot()
        self.last_due = 0.0

    def put(self, data: bytes) -> None:
        if not self.closed:
            self.buf += data
            self.lot.unpark_all()

    def close(self) -> None:
        self.closed = True
        self.lot.unpark_all()


@attrs.define(eq=False)
class InFlight:
    """A message held by a ``hold=True`` network, waiting for a test's decision."""

    pipe: _Pipe
    data: bytes

    @property
    def src(self) -> str:
        return self.pipe.src

    @property
    def dst(self) -> str:
        return self.pipe.dst


class MemoryStream(Stream):
    def __init__(self, send: _Pipe, recv: _Pipe) -> None:
        self._send, self._recv = send, recv

    async def send_messages(self, messages: list[list[Any]]) -> None:
        pipe = self._send
        if pipe.closed:
            raise trio.ClosedResourceError("stream closed")
        for msg in messages:
            pipe.net._transmit(pipe, b"".join(bytes(b) for b in msg))
        await trio.lowlevel.checkpoint()

    async def receive_into(self, view: memoryview) -> int:
        pipe = self._recv
        while not pipe.buf:
            if pipe.closed:
                return 0
            await pipe.lot.park()
        n = min(len(view), len(pipe.buf))
        view[:n] = pipe.buf[:n]
        del pipe.buf[:n]
        await trio.lowlevel.checkpoint()
        return n

    async def aclose(self) -> None:
        self._send.close()
        self._recv.close()
        await trio.lowlevel.checkpoint()


class _MemListener(Listener):
    def __init__(self, net: MemoryNetwork, name: str, handler: Handler, nursery: trio.Nursery) -> None:
        self.net, self.name, self.handler, self.nursery = net, name, handler, nursery
        self.address = f"mem://{name}"

    async def aclose(self) -> None:
        if self.net.listeners.get(self.name) is self:
            del self.net.listeners[self.name]
        await trio.lowlevel.checkpoint()


class MemoryNetwork:
    """The simulated network that :class:`MemoryTransport` endpoints share."""

    def __init__(self, seed: int = 0, faults: FaultPlan | None = None, hold: bool = False) -> None:
        self.rng = random.Random(seed)
        self.faults = faults or FaultPlan()
        self.hold = hold
        self.in_flight: list[InFlight] = []
        self.listeners: dict[str, _MemListener] = {}
        self.cut: set[frozenset[str]] = set()
        self.pipes: list[_Pipe] = []
        self.nursery: trio.Nursery | None = None  # where delayed deliveries wait
        self.delivered = 0
        self.dropped = 0

    def transport(self, host: str) -> MemoryTransport:
        """An endpoint of this network for the system on ``host`` (listening on ``mem://host``)."""
        return MemoryTransport(self, host)

    # ------------------------------------------------------------- faults

    def partition(self, a: str, b: str | None = None) -> None:
        """Cut ``a`` from ``b`` (from every other host if ``b`` is None): messages are lost."""
        hosts = {p.src for p in self.pipes} | {p.dst for p in self.pipes} | set(self.listeners)
        for other in [b] if b is not None else hosts - {a}:
            self.cut.add(frozenset((a, other)))

    def heal(self) -> None:
        """Undo every partition."""
        self.cut.clear()

    def is_cut(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.cut

    def crash(self, host: str) -> None:
        """Close every connection of ``host`` abruptly (both sides see the stream end)."""
        for p in self.pipes:
            if host in (p.src, p.dst):
                p.close()

    def _transmit(self, pipe: _Pipe, data: bytes) -> None:
        if self.is_cut(pipe.src, pipe.dst):
            self.dropped += 1
            return
        if self.hold:
            self.in_flight.append(InFlight(pipe, data))
            return
        f, rng = self.faults, self.rng
        if f.drop and rng.random() < f.drop:
            self.dropped += 1
            return
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        for _ in range(copies):
            lo, hi = f.delay
            delay = rng.uniform(lo, hi) if hi > 0 else 0.0
            reorder = bool(f.reorder) and rng.random() < f.reorder
            if delay <= 0 and not reorder and pipe.last_due <= trio.current_time():
                self.delivered += 1
                pipe.put(data)
                continue
            due = trio.current_time() + delay
            if reorder:
                due += rng.uniform(0, max(hi, 0.01))  # lands after later messages
            else:
                due = max(due, pipe.last_due)  # FIFO unless reordered
                pipe.last_due = due
            if self.nursery is None:
                raise RuntimeError("delays and reordering need MemoryNetwork.nursery (tray.testing sets it)")
            self.nursery.start_soon(self._deliver_at, pipe, data, due)

    async def _deliver_at(self, pipe: _Pipe, data: bytes, due: float) -> None:
        await trio.sleep_until(due)
        if not self.is_cut(pipe.src, pipe.dst):
            self.delivered += 1
            pipe.put(data)

    # ------------------------------------------------------ manual stepping

    def deliver(self, i: int = 0) -> InFlight:
        """Deliver the ``i``-th held message now (any index: reordering)."""
        m = self.in_flight.pop(i)
        if not self.is_cut(m.src, m.dst):
            self.delivered += 1
            m.pipe.put(m.data)
        return m

    def drop(self, i: int = 0) -> InFlight:
        """Lose the ``i``-th held message."""
        self.dropped += 1
        return self.in_flight.pop(i)

    def duplicate(self, i: int = 0) -> None:
        """Hold a second copy of the ``i``-th held message."""
        m = self.in_flight[i]
        self.in_flight.append(InFlight(m.pipe, m.data))

    def deliver_all(self) -> int:
        n = 0
        while self.in_flight:
            self.deliver(0)
            n += 1
        return n

    # -------------------------------------------------------- connections

    def _connect(self, src: str, name: str) -> MemoryStream:
        lst = self.listeners.get(name)
        if lst is None or self.is_cut(src, name):
            raise OSError(errno.ECONNREFUSED, f"nothing reachable at mem://{name}")
        up, down = _Pipe(self, src, name), _Pipe(self, name, src)
        self.pipes += [up, down]
        lst.nursery.start_soon(lst.handler, MemoryStream(down, up))
        return MemoryStream(up, down)


class MemoryTransport(Transport):
    """The endpoint of host ``host`` on a :class:`MemoryNetwork` (addresses ``mem://name``)."""

    schemes = ("mem",)

    def __init__(self, network: MemoryNetwork, host: str) -> None:
        self.network, self.host = network, host

    async def connect(self, address: str) -> Stream:
        await trio.lowlevel.checkpoint()
        return self.network._connect(self.host, address.partition("://")[2])

    async def listen(self, address: str, handler: Handler, nursery: trio.Nursery) -> Listener:
        name = address.partition("://")[2] or self.host
        if name in self.network.listeners:
            raise OSError(errno.EADDRINUSE, f"mem://{name} is taken")
        lst = self.network.listeners[name] = _MemListener(self.network, name, handler, nursery)
        await trio.lowlevel.checkpoint()
        return lst
