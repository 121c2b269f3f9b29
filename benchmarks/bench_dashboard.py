"""What the dashboard costs and how fast its API answers, tray and (with ``--ray-python``) Ray
measured in one run, each in fresh processes, alternating.

- start-up: ``init()`` with and without the dashboard (medians), and the memory of the
  node then: the driver and every process it started (RSS and USS summed);
- the dashboard's own processes once a first request was answered (tray: the server process,
  started on that request; Ray: the dashboard head and its agents, which ``include_dashboard``
  adds), RSS and USS, idle and after the listing below;
- ``/api/v0/tasks?limit=10000`` with 10,000 finished tasks (median of 5 requests after one
  warm-up; Ray's task events reach its GCS asynchronously, so it is first polled until all
  10,000 are listed).

    python benchmarks/bench_dashboard.py [--runs 5] [--ray-python /tmp/rayvenv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROCS = r"""
import os
def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out
def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
def memory(pids):
    rss = uss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "Rss":
                        rss += int(v.split()[0]) * 1024
                    elif k in ("Private_Clean", "Private_Dirty"):
                        uss += int(v.split()[0]) * 1024
        except OSError:
            pass
    return rss, uss
"""

STARTUP = PROCS.replace("{", "{{").replace("}", "}}") + r"""
import json, sys, time
t = time.perf_counter()
import {mod} as rt
info = rt.init(num_cpus=1, include_dashboard={dash})
took = time.perf_counter() - t
time.sleep(1.0)  # processes that start in the background (Ray's agents) are counted too
procs = [os.getpid()] + descendants(os.getpid())
rss, uss = memory(procs)
rt.shutdown()
print(json.dumps({{"init_s": took, "rss": rss, "uss": uss, "procs": len(procs)}}))
"""

API = PROCS.replace("{", "{{").replace("}", "}}") + r"""
import json, statistics, sys, time, urllib.parse, urllib.request
import {mod} as rt
info = rt.init(num_cpus=2)
url = {url}
headers = {headers}

@rt.remote
def noop():
    return None

rt.get([noop.remote() for _ in range({n})])

def get(path, **params):
    req = urllib.request.Request(url + path + ("?" + urllib.parse.urlencode(params) if params else ""),
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.read()

get("/api/version")  # tray: starts the server process

def dashboard_memory():
    return memory([p for p in descendants(os.getpid()) if {match}])

idle = dashboard_memory()
deadline = time.monotonic() + 120
while True:  # Ray reports task events to its GCS in the background
    body = get("/api/v0/tasks", limit={n}, filter_keys="state", filter_predicates="=", filter_values="FINISHED")
    total = json.loads(body)["data"]["result"]["total"]
    if total >= {n} or time.monotonic() > deadline:
        break
    time.sleep(1)
times = []
for _ in range(6):
    t = time.perf_counter()
    body = get("/api/v0/tasks", limit={n})
    times.append(time.perf_counter() - t)
rows = len(json.loads(body)["data"]["result"]["result"])
busy = dashboard_memory()
rt.shutdown()
print(json.dumps({{"rows": rows, "finished": total, "api_s": statistics.median(times[1:]),
                  "idle_rss": idle[0], "idle_uss": idle[1], "busy_rss": busy[0], "busy_uss": busy[1]}}))
"""

TRAY = {"mod": "tray", "url": 'info["dashboard_url"]',
        "headers": '{"Authorization": "Bearer " + rt.lowlevel.runtime_info().token}',
        "match": '"tray::dashboard" in cmdline(p)'}
RAY = {"mod": "ray", "url": '"http://" + info.dashboard_url',  # Ray 2.60 checks a token too (~/.ray/auth_token)
       "headers": '{"Authorization": "Bearer " + open(os.path.expanduser("~/.ray/auth_token")).read().strip()}',

       "match": '"dashboard" in cmdline(p) or "runtime_env" in cmdline(p)'}  # the dashboard head, its agents


def child(python: str, code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAY_", "RAY_"))}
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{python}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--ray-python", default=None, help="an interpreter with Ray installed: its side runs there")
    p.add_argument("--quick", action="store_true", help="one run over 500 tasks: checks that everything runs")
    args = p.parse_args()
    n = 500 if args.quick else 10_000
    if args.quick:
        args.runs = 1
    sides = [("tray", sys.executable, TRAY)] + ([("Ray", args.ray_python, RAY)] if args.ray_python else [])
    starts: dict[tuple[str, bool], list[dict]] = {(name, d): [] for name, _, _ in sides for d in (True, False)}
    for _ in range(args.runs):
        for name, python, side in sides:
            for dash in (True, False):
                starts[(name, dash)].append(child(python, STARTUP.format(mod=side["mod"], dash=dash)))
    api = {name: child(python, API.format(n=n, **side)) for name, python, side in sides}
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    mib = 2**20
    print(f"load average before the API runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.runs} runs")
    for name, _, _ in sides:
        w, wo = starts[(name, True)], starts[(name, False)]
        print(f"{name}: init() with dashboard {med(w, 'init_s') * 1000:8.1f} ms, node RSS {med(w, 'rss') / mib:6.1f} "
              f"MiB, USS {med(w, 'uss') / mib:6.1f} MiB ({med(w, 'procs'):.0f} processes)")
        print(f"{name}: init() without        {med(wo, 'init_s') * 1000:8.1f} ms, node RSS {med(wo, 'rss') / mib:6.1f} "
              f"MiB, USS {med(wo, 'uss') / mib:6.1f} MiB ({med(wo, 'procs'):.0f} processes)")
        print(f"{name}: the dashboard adds    {(med(w, 'init_s') - med(wo, 'init_s')) * 1000:8.1f} ms, "
              f"{(med(w, 'uss') - med(wo, 'uss')) / mib:6.1f} MiB USS at start-up")
        a = api[name]
        print(f"{name}: dashboard processes once serving: RSS {a['idle_rss'] / mib:.1f} MiB, "
              f"USS {a['idle_uss'] / mib:.1f} MiB; after the listing: RSS {a['busy_rss'] / mib:.1f} MiB, "
              f"USS {a['busy_uss'] / mib:.1f} MiB")
        print(f"{name}: /api/v0/tasks?limit={n} ({a['rows']} rows, {a['finished']} finished): "
              f"{a['api_s'] * 1000:.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
