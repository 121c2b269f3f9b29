"""Cross-process transport throughput, each beside a raw baseline measured in the same run.

    python benchmarks/bench_transport.py [--rounds 5] [--quick]

Against a worker process (``python -m tray.transport._worker``) on a Unix socket and on
TCP loopback:

- sequential asks/s, beside a plain blocking-socket ping-pong of the same message size;
- asks/s with 100 in flight;
- pipelined tells/s, beside a raw trio socket carrying msgpack frames to a decoder;
- bulk bytes/s (one large numpy array argument), beside a plain socket ``sendall`` of the
  same bytes to a process that reads them into a buffer.

Prints the median of each over the rounds (and the ratio tray / baseline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import msgpack
import trio

import tray
from tray.transport._codec import Kind, dumps, encode

TOKEN = "bench-token"


class Sink(tray.Actor):
    def __init__(self) -> None:
        self.n = 0

    def ping(self) -> int:
        return 1

    def hit(self) -> None:
        self.n += 1

    def count(self) -> int:
        return self.n

    def size(self, b: Any) -> int:
        return b.nbytes


# ---------------------------------------------------------------- raw side (child)


def _serve_raw(address: str) -> None:
    """Blocking server for the baselines: 'P' ping-pong, 'M' msgpack drain, 'B' bytes drain."""
    srv = _bind(address)
    print("READY", flush=True)
    while True:
        conn, _ = srv.accept()
        mode = conn.recv(1)
        if mode == b"P":
            (size,) = struct.unpack(">I", _recv_exact(conn, 4))
            buf = bytearray(size)
            view = memoryview(buf)
            while True:
                got = 0
                while got < size:
                    n = conn.recv_into(view[got:])
                    if not n:
                        break
                    got += n
                if got < size:
                    break
                conn.sendall(buf)
        elif mode == b"M":
            (count,) = struct.unpack(">I", _recv_exact(conn, 4))
            unp = msgpack.Unpacker()
            seen = 0
            while seen < count:
                data = conn.recv(262144)
                if not data:
                    break
                unp.feed(data)
                for _ in unp:
                    seen += 1
            conn.sendall(b"k")
        elif mode == b"B":
            (total,) = struct.unpack(">Q", _recv_exact(conn, 8))
            buf = bytearray(min(total, 1 << 30))
            view = memoryview(buf)
            got = 0
            while got < total:
                n = conn.recv_into(view[: min(len(buf), total - got)])
                if not n:
                    break
                got += n
            conn.sendall(b"k")
        conn.close()


def _bind(address: str) -> socket.socket:
    if address.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.bind(address[7:])
    else:
        host, port = address[6:].rsplit(":", 1)
        s = socket.socket()
        s.bind((host, int(port)))
    s.listen(8)
    return s


def _connect(address: str) -> socket.socket:
    if address.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(address[7:])
    else:
        host, port = address[6:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            raise EOFError
        data += more
    return data


def raw_pingpong(address: str, size: int, n: int) -> float:
    s = _connect(address)
    s.sendall(b"P" + struct.pack(">I", size))
    msg = b"x" * size
    buf = bytearray(size)
    view = memoryview(buf)
    t = time.perf_counter()
    for _ in range(n):
        s.sendall(msg)
        got = 0
        while got < size:
            got += s.recv_into(view[got:])
    dt = time.perf_counter() - t
    s.close()
    return n / dt


async def raw_trio_frames(address: str, n: int) -> float:
    """A raw trio socket writing msgpack frames in batches, to a decoding process."""
    if address.startswith("unix://"):
        stream = await trio.open_unix_socket(address[7:])
    else:
        host, port = address[6:].rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(b"M" + struct.pack(">I", n))
        pack = msgpack.Packer().pack
        t = time.perf_counter()
        batch: list[bytes] = []
        for _i in range(n):
            batch.append(pack([Kind.TELL, 0, "abcd1234:1", "hit", b"\x80\x05\x95", ()]))
            if len(batch) == 1000:
                await stream.send_all(b"".join(batch))
                batch = []
        if batch:
            await stream.send_all(b"".join(batch))
        await stream.receive_some(1)
        return n / (time.perf_counter() - t)


def raw_bulk(address: str, nbytes: int) -> float:
    s = _connect(address)
    s.sendall(b"B" + struct.pack(">Q", nbytes))
    data = memoryview(b"\x00" * nbytes)
    t = time.perf_counter()
    s.sendall(data)
    _recv_exact(s, 1)
    dt = time.perf_counter() - t
    s.close()
    return nbytes / dt


# --------------------------------------------------------------------- tray side


async def tray_sequential(ref: tray.ActorRef, n: int) -> float:
    ping = ref.ping
    t = time.perf_counter()
    for _ in range(n):
        await ping.ask()
    return n / (time.perf_counter() - t)


async def tray_inflight(ref: tray.ActorRef, n: int, width: int = 100) -> float:
    per = n // width
    ping = ref.ping

    async def worker() -> None:
        for _ in range(per):
            await ping.ask()

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(width):
            nursery.start_soon(worker)
    return per * width / (time.perf_counter() - t)


async def tray_tells(ref: tray.ActorRef, n: int) -> float:
    before = await ref.count.ask()
    hit = ref.hit
    t = time.perf_counter()
    for i in range(n):
        if i % 1000 == 999:
            await hit.tell()  # waits only if the connection is backed up
        else:
            hit.tell_nowait()
    got = await ref.count.ask()
    dt = time.perf_counter() - t
    assert got - before == n, (got, before, n)
    return n / dt


async def tray_bulk(ref: tray.ActorRef, nbytes: int) -> float:
    """One ask carrying an ``nbytes`` numpy array (zero-copy out of band on both ends)."""
    import numpy as np

    blob = np.zeros(nbytes, dtype=np.uint8)
    t = time.perf_counter()
    assert await ref.size.ask(blob) == nbytes
    return nbytes / (time.perf_counter() - t)


# --------------------------------------------------------------------------- main


def _start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start a child; return it and the rest of its READY line (a worker's bound address)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    line = p.stdout.readline().decode()  # type: ignore[union-attr]
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError(f"child failed: {line!r}")
    return p, line[5:].strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=None, help="default 5 (1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--serve-raw")
    args = ap.parse_args()
    if args.serve_raw:
        _serve_raw(args.serve_raw)
        return
    q = args.quick
    if args.rounds is None:
        args.rounds = 1 if q else 5
    n_seq, n_fly, n_tell = (500, 2000, 20_000) if q else (5000, 40_000, 300_000)
    bulk = (16 << 20) if q else (256 << 20)
    tmp = tempfile.mkdtemp(prefix="tray-bench-")
    env = dict(os.environ, TRAY_CLUSTER_TOKEN=TOKEN)
    procs: list[subprocess.Popen] = []
    try:
        # message size of a tray ask on the wire, for the ping-pong baseline
        payload, _ = dumps(((), {}))
        size = len(encode(Kind.ASK, 1, "abcd1234:1", "ping", payload, [], 1 << 20)[0])
        results: dict[str, list[float]] = {}

        def add(key: str, v: float) -> None:
            results.setdefault(key, []).append(v)

        for kind in ("unix", "tcp"):
            if kind == "unix":
                waddr, raddr = f"unix://{tmp}/w.sock", f"unix://{tmp}/raw.sock"
            else:
                waddr = "tcp://127.0.0.1:0"
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    raddr = f"tcp://127.0.0.1:{s.getsockname()[1]}"
            w, real_waddr = _start([sys.executable, "-m", "tray.transport._worker", waddr], env)
            procs.append(w)
            r, _ = _start([sys.executable, __file__, "--serve-raw", raddr], env)
            procs.append(r)

            async def run_tray(kind: str = kind, addr: str = real_waddr) -> None:
                async with tray.ActorSystem(token=TOKEN) as system:
                    ref = await system.spawn(Sink, at=addr)
                    await tray_sequential(ref, 200)  # warm up
                    for _ in range(args.rounds):
                        add(f"{kind} sequential ask/s", await tray_sequential(ref, n_seq))
                        add(f"{kind} raw ping-pong/s", raw_pingpong(raddr, size, n_seq))  # noqa: B023 - runs within this iteration
                        add(f"{kind} 100-in-flight ask/s", await tray_inflight(ref, n_fly))
                        add(f"{kind} pipelined tell/s", await tray_tells(ref, n_tell))
                        add(f"{kind} raw trio msgpack frames/s", await raw_trio_frames(raddr, n_tell))  # noqa: B023 - runs within this iteration
                        if kind == "tcp":
                            add("tcp bulk bytes/s", await tray_bulk(ref, bulk))
                            add("tcp raw bulk bytes/s", raw_bulk(raddr, bulk))  # noqa: B023 - runs within this iteration

            trio.run(run_tray)
        _report(results, size)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def _report(results: dict[str, list[float]], size: int) -> None:
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"medians over {len(next(iter(results.values())))} rounds (ask message: {size} bytes on the wire)")
    pairs: list[tuple[str, str | None, Callable[[float], str]]] = []
    def fmt_n(v: float) -> str:
        return f"{v:,.0f}"
    def fmt_b(v: float) -> str:
        return f"{v / 1e9:.2f} GB/s"
    for kind in ("unix", "tcp"):
        pairs += [
            (f"{kind} sequential ask/s", f"{kind} raw ping-pong/s", fmt_n),
            (f"{kind} 100-in-flight ask/s", None, fmt_n),
            (f"{kind} pipelined tell/s", f"{kind} raw trio msgpack frames/s", fmt_n),
        ]
    pairs.append(("tcp bulk bytes/s", "tcp raw bulk bytes/s", fmt_b))
    for key, base, fmt in pairs:
        if key not in med:
            continue
        line = f"  tray {key:32s} {fmt(med[key]):>14s}"
        if base:
            line += f"   baseline {base}: {fmt(med[base])}  ratio {med[key] / med[base]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
