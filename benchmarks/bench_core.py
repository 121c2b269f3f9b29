"""Ray's core microbenchmark (``ray microbenchmark``), line for line, against tray or Ray.

    python benchmarks/bench_core.py [--backend tray|ray] [--quick] [--filter PATTERN] [--json FILE]
    python benchmarks/bench_core.py --report OUT.md RESULTS.json [RESULTS.json ...]

The workloads and their names are those of Ray's ``ray/_private/ray_perf.py`` (the lines
that exercise tasks, actors, get and put; not the gigabyte, placement-group or client
lines), and the method is that of its ``timeit``: a warm-up of about a second, then a
few timed rounds in which ``fn`` runs in steps of ``warm-up count // 10 + 1`` until the
round's time is up. Each line prints ``NAME per second MEAN +- STD`` (STD is the
population standard deviation over the rounds, as Ray's ``np.std``). As in Ray, "n" is
``cpu_count() // 2`` (at least 1). Differences from Ray's script: no 10 s sleep before
each line, rounds of 1.5 s instead of 2 s, and the actors of a line are killed when it
ends (in Ray they die when their handles go out of scope).

``--backend ray`` imports Ray (only then); the default is tray (``import tray as ray``).
Cold start (import + init + first task result + shutdown, in a fresh interpreter; the
median of 3) is timed too. ``--json FILE`` writes the results; ``--report`` turns such
files (from both backends, several runs each) into a markdown table of per-line medians.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ray = None  # the backend module, set in main()

QUICK = False
WARMUP_S = 1.0
ROUNDS = 4
ROUND_S = 1.5


def timeit(name, fn, multiplier=1, results=None, pattern=""):
    """Ray's timeit: a warm-up, then ROUNDS rounds of ROUND_S seconds; prints and records the line."""
    if pattern and not re.search(pattern, name):
        return
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < WARMUP_S:
        fn()
        count += 1
    step = count // 10 + 1
    stats = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < ROUND_S:
            for _ in range(step):
                fn()
            count += step
        end = time.perf_counter()
        stats.append(multiplier * count / (end - start))
    mean = statistics.fmean(stats)
    sd = statistics.pstdev(stats)
    print(name, "per second", round(mean, 2), "+-", round(sd, 2), flush=True)
    if results is not None:
        results.append({"name": name, "mean": mean, "sd": sd, "rounds": stats})


def wanted(pattern, *names):
    return not pattern or any(re.search(pattern, n) for n in names)


def define():
    """The remote functions and actor classes of Ray's ray_perf.py (those the lines here use)."""

    @ray.remote(num_cpus=0)
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

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
    def small_value():
        return b"ok"

    @ray.remote
    def do_put_small():
        for _ in range(100):
            ray.put(0)

    return Actor, AsyncActor, Client, small_value, do_put_small


def kill(*actors):
    for a in actors:
        try:
            ray.kill(a)
        except Exception:
            pass


def run_lines(pattern):
    results = []
    Actor, AsyncActor, Client, small_value, do_put_small = define()
    # batch sizes of ray_perf.py; --quick scales them down so each line takes a fraction of a second
    k = 10 if QUICK else 1
    B = 1000 // k  # the 1000-call batches
    N = 5000 // k  # the 1:n and n:n per-client batches
    M = 4
    n_cpu = max(1, multiprocessing.cpu_count() // 2)

    def T(name, fn, multiplier=1):
        timeit(name, fn, multiplier, results, pattern)

    value = ray.put(0)

    def get_small():
        ray.get(value)

    T("single client get calls (Plasma Store)", get_small)

    def put_small():
        ray.put(0)

    T("single client put calls (Plasma Store)", put_small)

    def put_multi_small():
        ray.get([do_put_small.remote() for _ in range(10)])

    T("multi client put calls (Plasma Store)", put_multi_small, 1000)

    def small_value_batch():
        ray.get([small_value.remote() for _ in range(B)])

    T("single client tasks and get batch", small_value_batch)

    def small_task():
        ray.get(small_value.remote())

    T("single client tasks sync", small_task)

    def small_task_async():
        ray.get([small_value.remote() for _ in range(B)])

    T("single client tasks async", small_task_async, B)

    if wanted(pattern, "1:1 actor calls sync"):
        a = Actor.remote()

        def actor_sync():
            ray.get(a.small_value.remote())

        T("1:1 actor calls sync", actor_sync)
        kill(a)

    if wanted(pattern, "1:1 actor calls async"):
        a = Actor.remote()

        def actor_async():
            ray.get([a.small_value.remote() for _ in range(B)])

        T("1:1 actor calls async", actor_async, B)
        kill(a)

    if wanted(pattern, "1:1 actor calls concurrent"):
        a = Actor.options(max_concurrency=16).remote()

        def actor_concurrent():
            ray.get([a.small_value.remote() for _ in range(B)])

        T("1:1 actor calls concurrent", actor_concurrent, B)
        kill(a)

    if wanted(pattern, "1:n actor calls async"):
        actors = [Actor.remote() for _ in range(n_cpu)]
        client = Client.remote(actors)

        def actor_async_direct():
            ray.get(client.small_value_batch.remote(N))

        T("1:n actor calls async", actor_async_direct, N * len(actors))
        kill(client, *actors)

    if wanted(pattern, "n:n actor calls async"):
        a = [Actor.remote() for _ in range(n_cpu)]
        n = N

        @ray.remote
        def work(actors):
            ray.get([actors[i % n_cpu].small_value.remote() for i in range(n)])

        def actor_multi2():
            ray.get([work.remote(a) for _ in range(M)])

        T("n:n actor calls async", actor_multi2, M * n)
        kill(*a)

    if wanted(pattern, "n:n actor calls with arg async"):
        n = B
        actors = [Actor.remote() for _ in range(n_cpu)]
        clients = [Client.remote(x) for x in actors]

        def actor_multi2_direct_arg():
            ray.get([c.small_value_batch_arg.remote(n) for c in clients])

        T("n:n actor calls with arg async", actor_multi2_direct_arg, n * len(clients))
        kill(*clients, *actors)

    if wanted(pattern, "1:1 async-actor calls sync"):
        a = AsyncActor.remote()

        def async_actor_sync():
            ray.get(a.small_value.remote())

        T("1:1 async-actor calls sync", async_actor_sync)
        kill(a)

    if wanted(pattern, "1:1 async-actor calls async"):
        a = AsyncActor.remote()

        def async_actor():
            ray.get([a.small_value.remote() for _ in range(B)])

        T("1:1 async-actor calls async", async_actor, B)
        kill(a)

    if wanted(pattern, "1:1 async-actor calls with args async"):
        a = AsyncActor.remote()

        def async_actor_args():
            ray.get([a.small_value_with_arg.remote(i) for i in range(B)])

        T("1:1 async-actor calls with args async", async_actor_args, B)
        kill(a)

    return results


COLD_START = """
import time, sys
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


def cold_start(backend, times):
    """import + init + first task result + shutdown in a fresh interpreter; the median of ``times`` runs."""
    module = "ray" if backend == "ray" else "tray"
    init_args = "include_dashboard=False" if backend == "ray" else ""
    code = COLD_START.format(module=module, init_args=init_args)
    runs = []
    for _ in range(times):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - t
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("COLD ")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"cold start run failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
        imp, init, first, stop, total = map(float, line[0].split()[1:])
        runs.append({"import": imp, "init": init, "first_task": first, "shutdown": stop,
                     "total": total, "process_wall": wall})
        if backend == "ray":
            time.sleep(1.0)  # let the previous session's processes go before the next one starts
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"cold start (import + init + first task + shutdown) {med['total']:.3f} s "
          f"[import {med['import']:.3f} init {med['init']:.3f} first task {med['first_task']:.3f} "
          f"shutdown {med['shutdown']:.3f}; process wall {med['process_wall']:.3f}] median of {times}",
          flush=True)
    return {"median": med, "runs": runs}


def machine():
    model = "?"
    mem_kb = 0
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    model = ln.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal"):
                    mem_kb = int(ln.split()[1])
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def report(out, files):
    """A markdown table of per-line medians over the runs in ``files`` (JSON written by --json)."""
    runs = []
    for path in files:
        with open(path) as f:
            runs.append(json.load(f))
    by = {"ray": [r for r in runs if r["backend"] == "ray"], "tray": [r for r in runs if r["backend"] == "tray"]}
    names = []
    for r in runs:
        for line in r["results"]:
            if line["name"] not in names:
                names.append(line["name"])

    def med(backend, name):
        vals = [line["mean"] for r in by[backend] for line in r["results"] if line["name"] == name]
        return statistics.median(vals) if vals else None

    def cold(backend, key):
        vals = [r["cold_start"]["median"][key] for r in by[backend] if r.get("cold_start")]
        return statistics.median(vals) if vals else None

    m = runs[0]["machine"]
    ray_version = next((r["version"] for r in by["ray"]), "?")
    tray_version = next((r["version"] for r in by["tray"]), "?")
    order = [f"{r['backend']} ({os.path.basename(p)})" for r, p in zip(runs, files)]
    lines = [
        "# tray vs Ray: core microbenchmark",
        "",
        f"Generated by `benchmarks/bench_core.py --report` on {datetime.date.today().isoformat()} from "
        f"{len(by['tray'])} tray run(s) and {len(by['ray'])} Ray run(s), run alternately on the same "
        f"machine in this order: {', '.join(order)}.",
        "",
        f"- Machine: {m['nproc']} CPUs (nproc), {m['cpu_model']}, {m['mem_gib']} GiB RAM; "
        f"Python {m['python']}; {m['platform']}. Shared and noisy: expect run-to-run spread.",
        f"- Ray {ray_version} (pip wheel, in its own venv); tray {tray_version} (this tree).",
        "- Method: Ray's `ray microbenchmark` workloads and names (`ray/_private/ray_perf.py`), its "
        f"timeit method (1 s warm-up, then {ROUNDS} rounds of {ROUND_S} s; no 10 s sleep). Each cell is the "
        "median over runs of the line's mean ops/s.",
        "",
        "| benchmark | Ray ops/s | tray ops/s | tray / Ray |",
        "| --- | ---: | ---: | ---: |",
    ]
    def fmt(x):
        if x is None:
            return "n/a"
        return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"

    for name in names:
        r, t = med("ray", name), med("tray", name)
        ratio = f"{t / r:.2f}x" if r and t else "n/a"
        lines.append(f"| {name} | {fmt(r)} | {fmt(t)} | {ratio} |")
    lines += ["", "Higher is better; \"single client tasks and get batch\" counts batches of 1000 tasks, as in Ray.",
              "", "Cold start, in a fresh interpreter (each run's median of 3, then the median over runs; seconds,"
              " lower is better; Ray's init has `include_dashboard=False`):", "",
              "| phase | Ray s | tray s | tray / Ray |", "| --- | ---: | ---: | ---: |"]
    for key in ("import", "init", "first_task", "shutdown", "total", "process_wall"):
        r, t = cold("ray", key), cold("tray", key)
        if r is None or t is None:
            continue
        label = {"total": "import + init + first task + shutdown", "process_wall": "whole process (interpreter start/exit too)",
                 "first_task": "first task result"}.get(key, key)
        lines.append(f"| {label} | {r:.3f} | {t:.3f} | {t / r:.2f}x |")
    lines.append("")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def main(argv=None):
    global ray, QUICK, WARMUP_S, ROUNDS, ROUND_S
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("tray", "ray"), default="tray")
    p.add_argument("--quick", action="store_true", help="a smoke run: a fraction of a second per line")
    p.add_argument("--filter", default="", metavar="PATTERN", help="run only the lines whose name matches (regex)")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold start timing")
    p.add_argument("--report", metavar="OUT_MD", help="write a markdown comparison of the JSON FILEs given")
    p.add_argument("files", nargs="*", help="with --report: JSON files written by --json")
    args = p.parse_args(argv)
    if args.report:
        report(args.report, args.files)
        return 0
    if args.quick:
        QUICK, WARMUP_S, ROUNDS, ROUND_S = True, 0.05, 2, 0.1
    if args.backend == "ray":
        import ray as backend
    else:
        import tray as backend
    ray = backend
    version = getattr(backend, "__version__", "?")
    print(f"backend: {args.backend} {version} ({backend.__file__})", flush=True)

    cold = None
    if not args.no_cold_start and wanted(args.filter, "cold start"):
        cold = cold_start(args.backend, 1 if args.quick else 3)

    if args.backend == "ray":
        ray.init(include_dashboard=False)
    else:
        ray.init()
    try:
        results = run_lines(args.filter)
    finally:
        ray.shutdown()

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "version": version, "quick": args.quick,
                       "date": datetime.datetime.now().isoformat(timespec="seconds"),
                       "machine": machine(), "cold_start": cold, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
