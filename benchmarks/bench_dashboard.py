"""What the dashboard costs and how fast its API answers, measured in one run.

- start-up: ``tray.init()`` with and without ``include_dashboard`` (medians over fresh
  processes, alternating), and the head's RSS after init, both ways;
- the dashboard server process's RSS once the first request started it;
- ``/api/v0/tasks?limit=10000`` with 10,000 finished tasks (median of 5 requests).

    python benchmarks/bench_dashboard.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
t = time.perf_counter()
import tray
info = tray.init(num_cpus=1, include_dashboard={dash})
took = time.perf_counter() - t
import psutil
rss = psutil.Process().memory_info().rss
tray.shutdown()
print(json.dumps({{"init_s": took, "rss": rss}}))
"""


def one(dash: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(dash=dash)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def api_latency() -> dict:
    import httpx
    import psutil

    import tray

    info = tray.init(num_cpus=2)
    token = tray.lowlevel.runtime_info().token

    @tray.remote
    def noop() -> None:
        return None

    tray.get([noop.remote() for _ in range(10_000)])
    http = httpx.Client(base_url=info["dashboard_url"], headers={"Authorization": f"Bearer {token}"}, timeout=120)
    http.get("/api/version")  # starts the server process
    times, total = [], 0
    for _ in range(6):
        t = time.perf_counter()
        r = http.get("/api/v0/tasks", params={"limit": 10_000})
        times.append(time.perf_counter() - t)
        total = r.json()["data"]["result"]["total"]
    server = [p for p in psutil.Process().children(recursive=True) if "dashboard" in " ".join(p.cmdline())]
    server_rss = server[0].memory_info().rss if server else 0
    server_uss = server[0].memory_full_info().uss if server else 0
    http.close()
    tray.shutdown()
    return {"tasks_total": total, "api_tasks_s": statistics.median(times[1:]), "server_rss": server_rss,
            "server_uss": server_uss}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    with_d, without = [], []
    for _ in range(args.runs):
        with_d.append(one(True))
        without.append(one(False))
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    api = api_latency()
    mib = 2**20
    print(f"tray.init() with dashboard     {med(with_d, 'init_s') * 1000:8.1f} ms   head RSS {med(with_d, 'rss') / mib:6.1f} MiB")
    print(f"tray.init() without dashboard  {med(without, 'init_s') * 1000:8.1f} ms   head RSS {med(without, 'rss') / mib:6.1f} MiB")
    print(f"added by the dashboard         {(med(with_d, 'init_s') - med(without, 'init_s')) * 1000:8.1f} ms   "
          f"{(med(with_d, 'rss') - med(without, 'rss')) / mib:6.1f} MiB (the server is a separate process, "
          f"started on the first request)")
    print(f"dashboard server process       RSS {api['server_rss'] / mib:.1f} MiB, USS {api['server_uss'] / mib:.1f} MiB")
    print(f"/api/v0/tasks with {api['tasks_total']} tasks: {api['api_tasks_s'] * 1000:.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
