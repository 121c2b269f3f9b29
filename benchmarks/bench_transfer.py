"""Pulling an object from another node's store, beside raw sockets measured in the same run.

    python benchmarks/bench_transfer.py [--rounds 5] [--size-mib 1024] [--quick]
                                        [--chunk-mib 4] [--inflight 4]

A source process hosts a store (an ActorSystem on TCP loopback) holding one object of
``--size-mib`` MiB (64 with ``--quick``); this process's store fetches it
(``ObjectStore.fetch``: a chunked pull into a new secondary copy, sealed and readable),
drops the copy, and again, once per round. The baselines move the same bytes over one
TCP loopback connection from a process that sends them out of a ``/dev/shm`` mapping:

- raw recv + pwrite -> new shm file: received into one 4 MiB buffer and written into a
  new ``/dev/shm`` file (what a fetch must do, by hand, in one thread);
- raw recv -> one buffer: received into one buffer, over and over (the socket alone).

Prints the median GB/s of each over the rounds, and tray's ratio to the first baseline.
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import trio

import tray
from tray.store import STORE_NAME, ObjectStore, Segments, StoreClient
from tray.store._transfer import CHUNK, INFLIGHT

TOKEN = "bench-token"
MiB = 1 << 20
TRAY, RAW_FILE, RAW_SOCKET = "tray fetch", "raw recv + pwrite -> new shm file", "raw recv -> one buffer"


# ------------------------------------------------------------------ the sources (children)


async def _serve_store(prefix: str, nbytes: int, spill_dir: str) -> None:
    async with tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as system:
        store = await system.spawn(ObjectStore, prefix, nbytes + 64 * MiB, spill_dir, True,
                                   name=STORE_NAME, max_concurrency=1 << 20)
        token = trio.lowlevel.current_trio_token()
        client = StoreClient(store, prefix, 100 * 1024, system.uid, trio.from_thread.run,
                             lambda fn, *a: token.run_sync_soon(fn, *a), system.address)
        blob = await trio.to_thread.run_sync(client.encode, np.ones(nbytes, dtype=np.uint8), "obj", "owner")
        print("READY", system.address, blob.key, blob.size, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)


def _serve_raw(nbytes: int) -> None:
    """Send ``nbytes`` out of a /dev/shm file's mapping to whoever connects."""
    path = f"/dev/shm/tray-bench-raw-{os.getpid()}"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.unlink(path)  # the mapping keeps it
    os.ftruncate(fd, nbytes)
    mm = mmap.mmap(fd, nbytes)
    os.close(fd)
    mm.write(b"\x01" * nbytes)
    srv = socket.create_server(("127.0.0.1", 0))
    print("READY", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        conn.sendall(memoryview(mm))
        conn.close()


# -------------------------------------------------------------------- the fetcher


def _raw(port: int, nbytes: int, into_file: bool) -> float:
    """Seconds to receive ``nbytes`` into one 4 MiB buffer (each piece then written into
    a new /dev/shm file at its offset if ``into_file``)."""
    buf = memoryview(bytearray(4 * MiB))
    t = time.perf_counter()
    fd = -1
    if into_file:
        path = f"/dev/shm/tray-bench-dst-{os.getpid()}"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.unlink(path)
        os.ftruncate(fd, nbytes)
    with socket.create_connection(("127.0.0.1", port)) as s:
        got = 0
        while got < nbytes:
            n = s.recv_into(buf, min(len(buf), nbytes - got))
            if not n:
                raise EOFError
            if fd >= 0:
                os.pwrite(fd, buf[:n], got)
            got += n
    dt = time.perf_counter() - t
    if fd >= 0:
        os.close(fd)
    return dt


async def _rounds(args: argparse.Namespace, nbytes: int, source: list[str], port: int) -> dict[str, list[float]]:
    address, key, size = source[0], source[1], int(source[2])
    prefix = f"tray-bench-{os.urandom(3).hex()}-"
    spill = tempfile.mkdtemp(prefix="tray-bench-spill-")
    results: dict[str, list[float]] = {TRAY: [], RAW_FILE: [], RAW_SOCKET: []}
    try:
        async with tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as system:
            store = await system.spawn(ObjectStore, prefix, 2 * nbytes + 64 * MiB, spill, True, 10.0,
                                       int(args.chunk_mib * MiB), args.inflight,
                                       name=STORE_NAME, max_concurrency=1 << 20)
            for i in range(args.rounds + 1):  # the first round warms up (connections, threads)
                t = time.perf_counter()
                await store.fetch.ask(key, size, address)
                dt = time.perf_counter() - t
                await store.drop_copies.ask([key])
                while any(name.startswith(prefix) for name in os.listdir("/dev/shm")):
                    await trio.sleep(0.01)  # its pages are freed (in a thread) before we go on
                raw_file = await trio.to_thread.run_sync(_raw, port, nbytes, True)
                raw_socket = await trio.to_thread.run_sync(_raw, port, nbytes, False)
                if i:
                    for name, seconds in ((TRAY, dt), (RAW_FILE, raw_file), (RAW_SOCKET, raw_socket)):
                        results[name].append(nbytes / seconds)
    finally:
        Segments(prefix).sweep()
        shutil.rmtree(spill, ignore_errors=True)
    return results


def _start(cmd: list[str]) -> tuple[subprocess.Popen, list[str]]:
    """Start a child; return it and the words of its READY line."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.stdout.readline().decode().split()  # type: ignore[union-attr]
    if not line or line[0] != "READY":
        p.kill()
        p.wait()
        raise RuntimeError(f"child failed: {line!r}")
    return p, line[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=None, help="default 5 (2 with --quick)")
    ap.add_argument("--size-mib", type=int, default=None, help="default 1024 (64 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a small object (a smoke run)")
    ap.add_argument("--chunk-mib", type=float, default=CHUNK / MiB, help="MiB per chunk request")
    ap.add_argument("--inflight", type=int, default=INFLIGHT, help="chunk requests in flight")
    ap.add_argument("--serve-store", nargs=3, metavar=("PREFIX", "NBYTES", "SPILL_DIR"))
    ap.add_argument("--serve-raw", type=int, metavar="NBYTES")
    args = ap.parse_args()
    if args.serve_store:
        prefix, nbytes, spill = args.serve_store
        trio.run(_serve_store, prefix, int(nbytes), spill)
        return
    if args.serve_raw:
        _serve_raw(args.serve_raw)
        return
    args.rounds = args.rounds or (2 if args.quick else 5)
    nbytes = (args.size_mib or (64 if args.quick else 1024)) * MiB
    src_prefix = f"tray-bench-{os.urandom(3).hex()}-"
    spill = tempfile.mkdtemp(prefix="tray-bench-spill-")
    store = raw = None
    try:
        store, source = _start([sys.executable, __file__, "--serve-store", src_prefix, str(nbytes), spill])
        raw, (port,) = _start([sys.executable, __file__, "--serve-raw", str(nbytes)])
        results = trio.run(_rounds, args, nbytes, source, int(port))
    finally:
        if raw is not None:
            raw.kill()
            raw.wait()
        if store is not None:  # it stops, and sweeps its files, when its stdin closes
            store.stdin.close()  # type: ignore[union-attr]
            try:
                store.wait(10)
            except subprocess.TimeoutExpired:
                store.kill()
                store.wait()
        Segments(src_prefix).sweep()
        shutil.rmtree(spill, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"fetching a {nbytes // MiB} MiB object over TCP loopback ({args.chunk_mib:g} MiB chunks, "
          f"{args.inflight} in flight): medians of {args.rounds} rounds")
    for k, v in med.items():
        print(f"  {k:34s} {v / 1e9:6.2f} GB/s   (rounds: {', '.join(f'{x / 1e9:.2f}' for x in results[k])})")
    print(f"  ratio tray / {RAW_FILE}: {med[TRAY] / med[RAW_FILE]:.2f}")


if __name__ == "__main__":
    main()
