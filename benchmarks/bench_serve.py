"""Serve over HTTP and through handles: tray beside a bare ASGI server (the floor) and Ray Serve.

In one run: a trivial deployment (``__call__`` returns "ok") with 1 and 2 replicas, driven by a
separate load process (wrk when installed, else a small keep-alive HTTP client on trio) at 1,
16 and 64 connections; the same handler as a bare FastAPI app on one hypercorn worker; Ray
Serve's numbers when ``--ray-python`` names an interpreter with Ray (its side runs there, as a
subprocess). Then handle calls: sequential ``handle.remote().result()`` and 1,000 concurrent.
Prints requests/s and p50/p99 latency per line, and tray's ratio to each baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

FLOOR = textwrap.dedent('''
    import sys, asyncio
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse
    from hypercorn.config import Config
    from hypercorn.asyncio import serve
    app = FastAPI()
    @app.get("/", response_class=PlainTextResponse)
    async def root():
        return "ok"
    cfg = Config(); cfg.bind = ["127.0.0.1:" + sys.argv[1]]; cfg.accesslog = None
    asyncio.run(serve(app, cfg))
''')

RAY_SIDE = textwrap.dedent('''
    import json, sys, time
    import ray
    from ray import serve
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})

    @serve.deployment
    class Hello:
        def __call__(self, request=None):
            return "ok"

    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "deploy":
            h = serve.run(Hello.options(num_replicas=int(cmd[1])).bind(), name="default", route_prefix="/")
            h.remote().result()
            print("ready", flush=True)
        elif cmd[0] == "handles":
            n, m = int(cmd[1]), int(cmd[2])
            for _ in range(20):
                h.remote().result()
            t = time.perf_counter()
            for _ in range(n):
                h.remote().result()
            seq = n / (time.perf_counter() - t)
            t = time.perf_counter()
            rs = [h.remote() for _ in range(m)]
            for r in rs:
                r.result()
            conc = m / (time.perf_counter() - t)
            print(json.dumps({"seq": seq, "conc": conc}), flush=True)
        elif cmd[0] == "quit":
            break
    serve.shutdown()
    ray.shutdown()
''')

LOADGEN = textwrap.dedent('''
    # A keep-alive HTTP/1.1 GET loop per connection on trio (used when wrk is not installed).
    import json, sys, time, trio
    host, port, conns, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    lat = []
    errors = 0
    req = f"GET / HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n".encode()
    async def conn(deadline):
        global errors
        s = await trio.open_tcp_stream(host, port)
        buf = b""
        while trio.current_time() < deadline:
            t = time.perf_counter()
            await s.send_all(req)
            while True:
                head, sep, rest = buf.partition(b"\\r\\n\\r\\n")
                if sep:
                    m = [l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length:")]
                    n = int(m[0].split(b":")[1]) if m else 0
                    if len(rest) >= n:
                        if not head.startswith(b"HTTP/1.1 200"):
                            errors += 1
                        buf = rest[n:]
                        break
                data = await s.receive_some(65536)
                if not data:
                    return
                buf += data
            lat.append(time.perf_counter() - t)
        await s.aclose()
    async def main():
        deadline = trio.current_time() + duration
        async with trio.open_nursery() as n:
            for _ in range(conns):
                n.start_soon(conn, deadline)
    t = time.perf_counter()
    trio.run(main)
    el = time.perf_counter() - t
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    print(json.dumps({"rps": len(lat) / el, "p50_ms": q(0.5), "p99_ms": q(0.99), "errors": errors}))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def load(port: int, conns: int, duration: float, loadgen: str) -> dict[str, float]:
    """Drive ``http://127.0.0.1:port/`` from a separate process; requests/s and latency quantiles."""
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-t1", f"-c{conns}", f"-d{max(1, int(round(duration)))}s", "--latency",
                              f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=duration + 60).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": int(bad.group(1)) if bad else 0}
    out = subprocess.run([sys.executable, loadgen, "127.0.0.1", str(port), str(conns), str(duration)],
                         capture_output=True, text=True, timeout=duration + 60)
    return json.loads(out.stdout)


def tray_side(args: argparse.Namespace, loadgen: str, floor_port: int,
              floor: dict[str, dict]) -> tuple[dict[str, dict], dict[str, float]]:
    """tray's lines; each 1-replica line is followed at once by the floor's at the same
    concurrency, so both see the same machine load."""
    import tray
    from tray import serve

    @serve.deployment
    class Hello:
        def __call__(self, request: object = None) -> str:
            return "ok"

    tray.init(num_cpus=4)
    port = free_port()
    serve.start(http_options={"port": port})
    results: dict[str, dict] = {}
    handles: dict[str, float] = {}
    try:
        for n in (1, 2):
            h = serve.run(Hello.options(num_replicas=n).bind(), name="default", route_prefix="/")
            h.remote().result()
            for c in args.conns:
                results[f"{n} replica{'s' if n > 1 else ''}, {c} conn"] = load(port, c, args.duration, loadgen)
                if n == 1:
                    floor[f"{c} conn"] = load(floor_port, c, args.duration, loadgen)
            if n == 1:
                for _ in range(20):
                    h.remote().result()
                t = time.perf_counter()
                for _ in range(args.seq):
                    h.remote().result()
                handles["seq"] = args.seq / (time.perf_counter() - t)
                t = time.perf_counter()
                rs = [h.remote() for _ in range(args.concurrent)]
                for r in rs:
                    r.result()
                handles["conc"] = args.concurrent / (time.perf_counter() - t)
    finally:
        serve.shutdown()
        tray.shutdown()
    return results, handles


def start_floor(tmp: str) -> tuple[subprocess.Popen, int]:
    path = os.path.join(tmp, "floor.py")
    with open(path, "w") as f:
        f.write(FLOOR)
    port = free_port()
    proc = subprocess.Popen([sys.executable, path, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def ray_side(args: argparse.Namespace, loadgen: str, tmp: str) -> tuple[dict[str, dict], dict[str, float]]:
    path = os.path.join(tmp, "ray_side.py")
    with open(path, "w") as f:
        f.write(RAY_SIDE)
    port = free_port()
    proc = subprocess.Popen([args.ray_python, path, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    results: dict[str, dict] = {}
    handles: dict[str, float] = {}

    def ask(cmd: str) -> str:
        assert proc.stdin and proc.stdout
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the Ray side exited")
            if line.startswith(("ready", "{")):
                return line

    try:
        for n in (1, 2):
            ask(f"deploy {n}")
            for c in args.conns:
                results[f"{n} replica{'s' if n > 1 else ''}, {c} conn"] = load(port, c, args.duration, loadgen)
            if n == 1:
                handles = json.loads(ask(f"handles {args.seq} {args.concurrent}"))
        assert proc.stdin
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return results, handles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load line (default 10)")
    ap.add_argument("--conns", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--seq", type=int, default=1000, help="sequential handle calls")
    ap.add_argument("--concurrent", type=int, default=1000, help="concurrent handle calls")
    ap.add_argument("--ray-python", default=None, help="a Python with Ray installed, to run Ray Serve beside")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 s lines, 1 and 16 connections")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.conns, args.seq, args.concurrent = 1.0, [1, 16], 50, 100
    with tempfile.TemporaryDirectory() as tmp:
        loadgen = os.path.join(tmp, "loadgen.py")
        with open(loadgen, "w") as f:
            f.write(LOADGEN)
        print(f"load generator: {'wrk' if shutil.which('wrk') else 'trio keep-alive client'}; "
              f"{args.duration:g} s per line; {os.cpu_count()} CPUs", flush=True)
        floor: dict[str, dict] = {}
        floor_proc, floor_port = start_floor(tmp)
        try:
            tray_http, tray_handles = tray_side(args, loadgen, floor_port, floor)
        finally:
            floor_proc.terminate()
            floor_proc.wait(timeout=30)
        ray_http, ray_handles = ray_side(args, loadgen, tmp) if args.ray_python else ({}, {})

    def cell(r: dict | None) -> str:
        if not r:
            return "—"
        return f"{r['rps']:,.0f}/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms"

    print("\n| line | tray | bare FastAPI (hypercorn, 1 worker) | Ray Serve | tray/floor rps | tray/Ray rps | "
          "Ray p99 / tray p99 |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for key, r in tray_http.items():
        conn = key.split(", ")[1]
        f = floor.get(conn) if key.startswith("1 replica,") else None
        rr = ray_http.get(key)
        print(f"| HTTP {key} | {cell(r)} | {cell(f)} | {cell(rr)} | "
              f"{(r['rps'] / f['rps']) if f else float('nan'):.2f} | "
              f"{(r['rps'] / rr['rps']) if rr else float('nan'):.2f}x | "
              f"{(rr['p99_ms'] / r['p99_ms']) if rr else float('nan'):.2f}x |")
    for k, label in (("seq", "handle calls, sequential .remote().result()"),
                     ("conc", f"handle calls, {args.concurrent:,} concurrent")):
        t, rv = tray_handles.get(k), ray_handles.get(k)
        print(f"| {label} | {t:,.0f}/s | — | {f'{rv:,.0f}/s' if rv else '—'} | — | "
              f"{(t / rv) if rv else float('nan'):.2f}x | — |")
    errors = sum(r.get("errors", 0) for r in tray_http.values())
    print(f"\ntray non-2xx responses: {errors}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tray": tray_http, "tray_handles": tray_handles, "floor": floor, "ray": ray_http,
                       "ray_handles": ray_handles}, f, indent=1)


if __name__ == "__main__":
    main()
