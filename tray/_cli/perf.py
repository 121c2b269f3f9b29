"""``tray microbenchmark``: the lines of ``ray microbenchmark``, plus tray's own.

The Ray lines keep the names, workloads and method of Ray's ``ray/_private/ray_perf.py``
and its ``timeit``: a warm-up of about a second, then 4 rounds of 2 s in which ``fn``
runs in steps of ``warm-up count // 10 + 1``; each prints ``NAME per second MEAN +- STD``
(STD: the population standard deviation over the rounds, as Ray's ``np.std``); "n" is
``cpu_count() // 2`` (at least 1). Unlike Ray: no 10 s sleep before each line, a line's
actors are killed when it ends, and Ray's client lines are left out.

tray's own lines print ``NAME UNIT MEAN +- STD`` too: cold start (import + init + first
task result + shutdown in a fresh interpreter), how long 8 new actors take to answer (each
a new worker process), the RSS and USS of an idle actor's worker
process and of the whole node with 4 idle actors (the driver and all its descendant
processes: for Ray that includes gcs_server, raylet and its agents), the CPU that node
uses while idle, and the actor kernel's asks and tells in one process and across two.

The raw floor comes first: a blocking ping-pong over a Unix socket pair between this
process and a bare child (a small request, a small reply, as a sync call sends and gets),
the most round trips per second two processes can make here; each sync line then says
which share of it it reaches ("x% of the floor"). Both backends run it, so a comparison
shows the load each one ran under.

The module takes the backend as an argument (``tray`` or ``ray``) and imports only the
standard library at load time, so it also runs as a file with a Ray interpreter that
lacks tray's dependencies: ``python tray/_cli/perf.py --backend ray --json FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

RAY_TIMING = (1.0, 4, 2.0)  # Ray's timeit: warm-up s, rounds, s per round
OWN_TIMING = (0.5, 4, 0.5)  # tray's own rate lines: a few seconds each
QUICK_TIMING = (0.05, 2, 0.1)
LOWER_IS_BETTER = frozenset({"s", "MiB", "% of a core"})
IDLE_ACTORS = 4
FLOOR_NAME = "raw floor: blocking Unix-socket ping-pong between two processes"
SYNC_LINES = ("single client tasks sync", "1:1 actor calls sync", "1:1 async-actor calls sync")
PING, PONG = b"p" * 96, b"r" * 48  # about a sync call's request and reply frames


class Bench:
    """One run: the lines matching ``pattern`` (a regex), printed and recorded in ``results``."""

    def __init__(self, pattern: str = "", quick: bool = False) -> None:
        self.pattern = pattern
        self.quick = quick
        self.results: list[dict[str, Any]] = []
        self.floor: float | None = None  # the raw floor's rate, once measured

    def wanted(self, *names: str) -> bool:
        return not self.pattern or any(re.search(self.pattern, n) for n in names)

    def _timing(self, timing: tuple[float, int, float]) -> tuple[float, int, float]:
        return QUICK_TIMING if self.quick else timing

    def record(self, name: str, unit: str, values: list[float], **extra: Any) -> None:
        if not self.wanted(name):  # measured along with a line that is wanted
            return
        mean, sd = statistics.fmean(values), statistics.pstdev(values)
        share = ""
        if name in SYNC_LINES and self.floor:
            extra["floor_share"] = mean / self.floor
            share = f" ({100 * mean / self.floor:.1f}% of the floor)"
        print(name, unit, round(mean, 2), "+-", round(sd, 2), flush=True, end=share + "\n")
        self.results.append({"name": name, "unit": unit, "mean": mean, "sd": sd, "values": values, **extra})

    def skip(self, name: str, why: str) -> None:
        if self.wanted(name):
            print(f"{name} skipped: {why}", flush=True)
            self.results.append({"name": name, "skipped": why})

    def timeit(self, name: str, fn: Callable[[], Any], multiplier: float = 1, timing=RAY_TIMING) -> None:
        if not self.wanted(name):
            return
        stats: list[float] = []
        for calls in _schedule(stats, multiplier, *self._timing(timing)):
            for _ in range(calls):
                fn()
        self.record(name, "per second", stats)

    async def atimeit(self, name: str, afn: Callable[[], Any], multiplier: float = 1, timing=OWN_TIMING) -> None:
        """:meth:`timeit` for an async ``afn``, awaited inside the caller's trio loop."""
        if not self.wanted(name):
            return
        stats: list[float] = []
        for calls in _schedule(stats, multiplier, *self._timing(timing)):
            for _ in range(calls):
                await afn()
        self.record(name, "per second", stats)


def _schedule(stats: list[float], multiplier: float, warmup_s: float, rounds: int, round_s: float) -> Iterator[int]:
    """Ray's timeit loop without the calls: yields how many calls to make next, and
    appends each round's rate to ``stats``; sync and async callers share it."""
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < warmup_s:
        yield 1
        count += 1
    step = count // 10 + 1
    for _ in range(rounds):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < round_s:
            yield step
            count += step
        stats.append(multiplier * count / (time.perf_counter() - start))


def _kill(ray: ModuleType, *actors: Any) -> None:
    """End a line: wait (10 s at most) until the node's CPUs are all free again, so that the
    next line starts on a quiet node, then kill the line's actors."""
    total = ray.cluster_resources().get("CPU", 0)
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    for a in actors:
        ray.kill(a)


# ------------------------------------------------------------------ Ray's lines


def ray_lines(ray: ModuleType, b: Bench) -> None:
    """The lines of Ray's ray_perf.py, in its order, with its workloads (``--quick``:
    batches and arrays scaled down; the names stay)."""
    k = 10 if b.quick else 1  # batch sizes
    g = 100 if b.quick else 1  # array sizes
    w = b.wanted

    @ray.remote
    def small_value():
        return b"ok"

    @ray.remote(num_cpus=0)
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            ray.get([small_value.remote() for _ in range(n)])

    @ray.remote
    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    @ray.remote(num_cpus=0)
    class Client:
        def __init__(self, servers):
            if not isinstance(servers, list):
                servers = [servers]
            self.servers = servers

        def small_value_batch(self, n):
            results = []
            for s in self.servers:
                results.extend([s.small_value.remote() for _ in range(n)])
            ray.get(results)

        def small_value_batch_arg(self, n):
            x = ray.put(0)
            results = []
            for s in self.servers:
                results.extend([s.small_value_arg.remote(x) for _ in range(n)])
            ray.get(results)

    @ray.remote
    def create_object_containing_ref(n):
        obj_refs = []
        for _ in range(n):
            obj_refs.append(ray.put(1))
        return obj_refs

    value = ray.put(0)

    def get_small():
        ray.get(value)

    def put_small():
        ray.put(0)

    @ray.remote
    def do_put_small():
        for _ in range(100):
            ray.put(0)

    def put_multi_small():
        ray.get([do_put_small.remote() for _ in range(10)])

    b.timeit("single client get calls (Plasma Store)", get_small)
    b.timeit("single client put calls (Plasma Store)", put_small)
    b.timeit("multi client put calls (Plasma Store)", put_multi_small, 1000)

    try:
        import numpy as np
    except ImportError:
        np = None  # type: ignore[assignment]  # numpy is optional
    gb = ("single client put gigabytes", "multi client put gigabytes")
    if np is None:
        for name in gb:
            b.skip(name, "needs numpy")
    elif w(gb[0]):
        arr = np.zeros(100 * 1024 * 1024 // g, dtype=np.int64)

        def put_large():
            ray.put(arr)

        b.timeit(gb[0], put_large, 8 * 0.1 / g)
        del arr

    def small_value_batch():
        submitted = [small_value.remote() for _ in range(1000 // k)]
        ray.get(submitted)
        return 0

    b.timeit("single client tasks and get batch", small_value_batch)

    if np is not None and w(gb[1]):

        @ray.remote
        def do_put():
            for _ in range(10):
                ray.put(np.zeros(10 * 1024 * 1024 // g, dtype=np.int64))

        def put_multi():
            ray.get([do_put.remote() for _ in range(10)])

        b.timeit(gb[1], put_multi, 10 * 8 * 0.1 / g)

    if w("single client get object containing 10k refs"):
        obj_containing_ref = create_object_containing_ref.remote(10000 // k)

        def get_containing_object_ref():
            ray.get(obj_containing_ref)

        b.timeit("single client get object containing 10k refs", get_containing_object_ref)
        del obj_containing_ref

    def wait_multiple_refs():
        num_objs = 1000 // k
        not_ready = [small_value.remote() for _ in range(num_objs)]
        fetch_local = True
        for _ in range(num_objs):
            _ready, not_ready = ray.wait(not_ready, fetch_local=fetch_local)
            if fetch_local:
                fetch_local = False

    b.timeit("single client wait 1k refs", wait_multiple_refs)

    def small_task():
        ray.get(small_value.remote())

    b.timeit("single client tasks sync", small_task)

    def small_task_async():
        ray.get([small_value.remote() for _ in range(1000 // k)])

    b.timeit("single client tasks async", small_task_async, 1000 // k)

    n_cpu = max(1, (os.cpu_count() or 2) // 2)
    m = 4

    if w("multi client tasks async"):
        n = 10000 // k
        actors = [Actor.remote() for _ in range(m)]  # type: ignore[attr-defined]  # @ray.remote made it an actor class (mypy ignores class decorators)

        def multi_task():
            submitted = [a.small_value_batch.remote(n) for a in actors]
            ray.get(submitted)

        b.timeit("multi client tasks async", multi_task, n * m)
        _kill(ray, *actors)

    B = 1000 // k
    for name, cls, opts in (
        ("1:1 actor calls sync", Actor, {}),
        ("1:1 actor calls async", Actor, {}),
        ("1:1 actor calls concurrent", Actor, {"max_concurrency": 16}),
        ("1:1 async-actor calls sync", AsyncActor, {}),
        ("1:1 async-actor calls async", AsyncActor, {}),
        ("1:1 async-actor calls with args async", AsyncActor, {}),
    ):
        if not w(name):
            continue
        a = cls.options(**opts).remote() if opts else cls.remote()  # type: ignore[union-attr]  # @ray.remote made it an actor class (mypy ignores class decorators)
        if name.endswith("sync") and not name.endswith("async"):

            def call(a=a):
                ray.get(a.small_value.remote())

            b.timeit(name, call)
        elif "with args" in name:

            def call(a=a):
                ray.get([a.small_value_with_arg.remote(i) for i in range(B)])

            b.timeit(name, call, B)
        else:

            def call(a=a):
                ray.get([a.small_value.remote() for _ in range(B)])

            b.timeit(name, call, B)
        _kill(ray, a)

    n = 5000 // k
    for name, cls in (("1:n actor calls async", Actor), ("1:n async-actor calls async", AsyncActor)):
        if w(name):
            actors = [cls.remote() for _ in range(n_cpu)]  # type: ignore[union-attr]  # @ray.remote made it an actor class (mypy ignores class decorators)
            client = Client.remote(actors)  # type: ignore[attr-defined]  # @ray.remote made it an actor class (mypy ignores class decorators)

            def actor_async_direct(client=client):
                ray.get(client.small_value_batch.remote(n))

            b.timeit(name, actor_async_direct, n * len(actors))
            _kill(ray, client, *actors)

    for name, cls in (("n:n actor calls async", Actor), ("n:n async-actor calls async", AsyncActor)):
        if w(name):
            a = [cls.remote() for _ in range(n_cpu)]  # type: ignore[union-attr]  # @ray.remote made it an actor class (mypy ignores class decorators)

            @ray.remote
            def work(actors):
                ray.get([actors[i % n_cpu].small_value.remote() for i in range(n)])

            def actor_multi2(a=a, work=work):
                ray.get([work.remote(a) for _ in range(m)])

            b.timeit(name, actor_multi2, m * n)
            _kill(ray, *a)

    if w("n:n actor calls with arg async"):
        n = 1000 // k
        actors = [Actor.remote() for _ in range(n_cpu)]  # type: ignore[attr-defined]  # @ray.remote made it an actor class (mypy ignores class decorators)
        clients = [Client.remote(a) for a in actors]  # type: ignore[attr-defined]  # @ray.remote made it an actor class (mypy ignores class decorators)

        def actor_multi2_direct_arg():
            ray.get([c.small_value_batch_arg.remote(n) for c in clients])

        b.timeit("n:n actor calls with arg async", actor_multi2_direct_arg, n * len(clients))
        _kill(ray, *clients, *actors)


def placement_group_line(ray: ModuleType, b: Bench, init_kwargs: dict[str, Any]) -> None:
    """Ray's placement group line, in a session of its own with a custom resource, as in Ray."""
    name = "placement group create/removal"
    if not b.wanted(name):
        return
    if not hasattr(ray.util, "placement_group"):
        b.skip(name, "needs placement groups")
        return
    num_pgs = 100 // (10 if b.quick else 1)
    ray.init(resources={"custom": 100}, **init_kwargs)
    try:

        def placement_group_create_removal():
            pgs = [ray.util.placement_group(bundles=[{"custom": 0.001}]) for _ in range(num_pgs)]
            [pg.wait(timeout_seconds=30) for pg in pgs]
            for pg in pgs:
                ray.util.remove_placement_group(pg)

        b.timeit(name, placement_group_create_removal, num_pgs)
    finally:
        ray.shutdown()


# ------------------------------------------------------------------ tray's own lines

FLOOR_PEER = """
import os, socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
n = int(sys.argv[2])
reply = b"r" * int(sys.argv[3])
while True:
    got = 0
    while got < n:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(0)
        got += len(chunk)
    s.sendall(reply)
"""


def floor_line(b: Bench) -> None:
    """The raw floor (see the module docstring): measured when it or a sync line is wanted,
    so that the sync lines can say their share of it; printed only when it is wanted."""
    if not b.wanted(FLOOR_NAME, *SYNC_LINES):
        return
    import socket

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    peer = subprocess.Popen([sys.executable, "-c", FLOOR_PEER, str(theirs.fileno()), str(len(PING)), str(len(PONG))],
                            pass_fds=[theirs.fileno()])
    theirs.close()
    try:

        def ping_pong() -> None:
            mine.sendall(PING)
            got = 0
            while got < len(PONG):
                chunk = mine.recv(65536)
                if not chunk:
                    raise RuntimeError("the floor's peer process exited")
                got += len(chunk)

        stats: list[float] = []
        for calls in _schedule(stats, 1, *b._timing(OWN_TIMING)):
            for _ in range(calls):
                ping_pong()
        b.floor = statistics.fmean(stats)
        b.record(FLOOR_NAME, "per second", stats)
    finally:
        mine.close()  # the peer's cue to exit
        peer.wait(10)

COLD_START = """
import time
t0 = time.perf_counter()
import {module} as ray
t1 = time.perf_counter()
ray.init({init_args})
t2 = time.perf_counter()

@ray.remote
def f():
    return 1

assert ray.get(f.remote()) == 1
t3 = time.perf_counter()
ray.shutdown()
t4 = time.perf_counter()
print("COLD", t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)
"""
COLD_NAME = "cold start (import + init + first task + shutdown)"


def cold_start_line(backend: str, b: Bench) -> None:
    """The cold start line, timed inside a fresh interpreter; its phases are kept in ``phases``.

    A first, untimed run writes the bytecode caches (into a temporary ``PYTHONPYCACHEPREFIX``
    that every run, and the workers they start, read): an installed package has them, and
    an environment with ``PYTHONDONTWRITEBYTECODE`` (an editable install in a sandbox) would
    otherwise have tray compile its sources in every process, which no user's start pays.
    Both backends get the same treatment (and a warm page cache from it).
    """
    if not b.wanted(COLD_NAME):
        return
    code = COLD_START.format(module=backend, init_args="include_dashboard=False" if backend == "ray" else "")
    runs = []
    with tempfile.TemporaryDirectory(prefix="cold-pycache-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for k in range(1 + (1 if b.quick else 3)):
            phases = _cold_run(code, warm if k == 0 else env)
            if k > 0:
                runs.append(phases)
            if backend == "ray":
                time.sleep(1.0)  # let the session's daemons exit before the next one starts
    phases = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    b.record(COLD_NAME, "s", [r["total"] for r in runs], phases=phases)


def _cold_run(code: str, env: dict[str, str]) -> dict[str, float]:
    """One cold start in a fresh interpreter: its phases, in seconds."""
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                          env=env)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("COLD ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"cold start run failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
    phase_s = map(float, line[0].split()[1:])
    return dict(zip(("import", "init", "first_task", "shutdown", "total"), phase_s, strict=True))


def idle_node_lines(ray: ModuleType, b: Bench) -> None:
    """Memory and CPU of a node at rest: 4 idle actors, each in its worker process.

    The node is this driver and all its descendant processes; RSS counts shared pages
    once per process (as ``ps`` does), USS only each process's own pages.
    """
    names = [f"idle actor worker {k}" for k in ("RSS", "USS")]
    names += [f"node {k} with {IDLE_ACTORS} idle actors" for k in ("RSS", "USS")]
    names.append(f"node idle CPU with {IDLE_ACTORS} idle actors")
    if not b.wanted(*names):
        return
    try:
        import psutil  # ray bundles it; tray has it in its test extras
    except ImportError:
        for name in names:
            b.skip(name, "needs psutil")
        return

    @ray.remote(num_cpus=0)
    class Idle:
        def pid(self):
            return os.getpid()

    actors = [Idle.remote() for _ in range(IDLE_ACTORS)]  # type: ignore[attr-defined]  # @ray.remote made it an actor class (mypy ignores class decorators)
    try:
        pids = ray.get([a.pid.remote() for a in actors])
        time.sleep(0.2 if b.quick else 2.0)  # let start-up work (prestarted workers, imports) finish
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        mib = 2**20
        rss = {p.pid: p.memory_info().rss / mib for p in procs}
        uss = {p.pid: p.memory_full_info().uss / mib for p in procs}
        b.record(names[0], "MiB", [rss[p] for p in pids])
        b.record(names[1], "MiB", [uss[p] for p in pids])
        b.record(names[2], "MiB", [sum(rss.values())], processes=len(procs))
        b.record(names[3], "MiB", [sum(uss.values())], processes=len(procs))
        samples = []
        for _ in range(2 if b.quick else 5):
            t0, c0 = time.perf_counter(), _cpu_seconds(procs, psutil)
            time.sleep(0.25 if b.quick else 1.0)
            samples.append(100 * (_cpu_seconds(procs, psutil) - c0) / (time.perf_counter() - t0))
        b.record(names[4], "% of a core", samples)
    finally:
        _kill(ray, *actors)


NEW_ACTORS = 8
ACTOR_START_NAME = f"{NEW_ACTORS} new actors ready (each in a new worker process)"


def actor_start_line(ray: ModuleType, b: Bench) -> None:
    """How long 8 new actors take until each has answered a call: each is a new worker
    process (its start is what a zygote, or a prestarted worker, saves)."""
    if not b.wanted(ACTOR_START_NAME):
        return

    @ray.remote(num_cpus=0)
    class Fresh:
        def ping(self):
            return 1

    times = []
    for _ in range(1 if b.quick else 3):
        t0 = time.perf_counter()
        actors = [Fresh.remote() for _ in range(NEW_ACTORS)]  # type: ignore[attr-defined]  # an actor class
        ray.get([a.ping.remote() for a in actors])
        times.append(time.perf_counter() - t0)
        _kill(ray, *actors)
        time.sleep(0.5)  # their processes exit before the next round
    b.record(ACTOR_START_NAME, "s", times)


def _cpu_seconds(procs: list[Any], psutil: ModuleType) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):  # a process that exited: it counts no more
            t = p.cpu_times()
            total += t.user + t.system
    return total


KERNEL_LINES = ("in-process actor ask", "in-process actor tell", "cross-process actor ask", "cross-process actor tell")


def kernel_lines(backend: str, b: Bench) -> None:
    """Asks and tells of tray's actor kernel (``tray.Actor``), which Ray has no counterpart of:
    sequential asks; tells counted once handled (batches of 1000 closed by an ask). Cross
    process: to a bare worker (``python -m tray.transport._worker``) over a Unix socket."""
    if backend != "tray":
        for name in KERNEL_LINES:
            b.skip(name, "tray's actor kernel only")
        return
    if not b.wanted(*KERNEL_LINES):
        return
    import trio

    import tray
    from tray import _config

    class Counter(tray.Actor):
        def __init__(self) -> None:
            self.n = 0

        def incr(self) -> int:
            self.n += 1
            return self.n

    async def measure(ref: tray.ActorRef, where: str) -> None:
        incr = ref.incr

        async def tells() -> None:
            for _ in range(1000):
                await incr.tell()
            await incr.ask()

        await b.atimeit(f"{where} actor ask", incr.ask)
        await b.atimeit(f"{where} actor tell", tells, 1000)

    async def in_process() -> None:
        async with tray.ActorSystem() as system:
            await measure(await system.spawn(Counter), "in-process")

    async def cross_process(address: str, token: str) -> None:
        async with tray.ActorSystem(token=token) as system:
            await measure(await system.spawn(Counter, at=address), "cross-process")

    if b.wanted(*KERNEL_LINES[:2]):
        trio.run(in_process)
    if b.wanted(*KERNEL_LINES[2:]):
        token = os.urandom(8).hex()
        tmp = tempfile.mkdtemp(prefix="tray-perf-")
        worker = subprocess.Popen(
            [sys.executable, "-m", "tray.transport._worker", f"unix://{tmp}/w.sock"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, **_config.to_env(cluster_token=token)),
        )
        try:
            line = worker.stdout.readline().decode()  # type: ignore[union-attr]
            if not line.startswith("READY "):
                raise RuntimeError(f"worker failed to start: {line!r}")
            trio.run(cross_process, line[6:].strip(), token)
        finally:
            worker.stdin.close()  # type: ignore[union-attr]  # its cue to exit
            worker.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ a run


def machine() -> dict[str, Any]:
    model, mem_kb = "?", 0
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
        with open("/proc/meminfo") as f:
            mem_kb = next((int(ln.split()[1]) for ln in f if ln.startswith("MemTotal")), 0)
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def run(backend: str = "tray", pattern: str = "", json_path: str | None = None, quick: bool = False) -> int:
    """Run the lines matching ``pattern`` on ``backend`` ("tray" or "ray"); write them to ``json_path``."""
    ray: ModuleType = __import__(backend)
    version = getattr(ray, "__version__", "?")
    print(f"backend: {backend} {version} ({ray.__file__})", flush=True)
    b = Bench(pattern, quick)
    init_kwargs = {"include_dashboard": False} if backend == "ray" else {}
    floor_line(b)
    cold_start_line(backend, b)
    ray.init(**init_kwargs)
    try:
        idle_node_lines(ray, b)
        actor_start_line(ray, b)
        ray_lines(ray, b)
    finally:
        ray.shutdown()
    placement_group_line(ray, b, init_kwargs)
    kernel_lines(backend, b)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"backend": backend, "version": version, "quick": quick,
                       "date": datetime.datetime.now().isoformat(timespec="seconds"),
                       "machine": machine(), "results": b.results}, f, indent=1)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``tray microbenchmark``."""
    # imported here, not at the top: this file also runs alone, with Ray
    from tray._cli import COMMANDS

    p = sub.add_parser(
        "microbenchmark",
        help=COMMANDS["microbenchmark"].help,
        description="Run the lines of `ray microbenchmark` (same names and method) and tray's own"
        " (the raw floor of a process-to-process round trip, cold start, memory and CPU at rest, actor asks"
        " and tells); each prints NAME UNIT MEAN +- STD.",
    )
    add_arguments(p)
    p.set_defaults(func=lambda args: run("tray", args.filter, args.json, args.quick))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``tray microbenchmark`` and this file's ``main`` share."""
    p.add_argument("--filter", default="", metavar="PATTERN", help="run only the lines whose name matches (a regex)")
    p.add_argument("--json", metavar="FILE", help="write the results to FILE")
    p.add_argument("--quick", action="store_true", help="a smoke run: a fraction of a second per line")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tray/_cli/perf.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tray", "ray"), default="tray")
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args.backend, args.filter, args.json, args.quick)


if __name__ == "__main__":
    # Run as a file: keep this package's directory off sys.path, where its modules
    # (core, util, testing, ...) would shadow top-level ones.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.exit(main())
