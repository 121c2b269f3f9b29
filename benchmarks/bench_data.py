"""tray.data vs Ray Data vs the single-process floor (numpy/pyarrow on one core), in one run.

    python benchmarks/bench_data.py [--ray-python /tmp/rayvenv/bin/python] [--quick]

(a) range(10M).map_batches(add one, batch_size=4096).sum   (b) ~200 MB parquet, groupby mean
(c) random_shuffle of 1M rows x 10 float columns            (d) iter_torch_batches over 1M rows
(e) 1 GiB through a 200 MiB store (peak node RSS growth)  (f) map_batches' fixed cost per batch
Each line: rows/s (median of runs); Ray's side runs this same file in Ray's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

import numpy as np


def _timed(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.exists(path):
        return
    os.makedirs(path)
    rng = np.random.default_rng(0)
    per = rows // 8
    for i in range(8):
        pq.write_table(pa.table({"k": rng.integers(0, 100, per), "v": rng.random(per)}), f"{path}/{i}.parquet",
                       row_group_size=per // 4)


def engine_side(name, quick):
    if name == "ray":
        import ray
        import ray.data as rd

        ray.init(num_cpus=2, object_store_memory=2**30, include_dashboard=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
    else:
        import tray as ray
        import tray.data as rd

        ray.init(num_cpus=2, object_store_memory=2**30)
    import psutil

    runs = 1 if quick else 3
    scale = 10 if quick else 1
    out = {}
    n = 10_000_000 // scale
    t = _timed(lambda: rd.range(n).map_batches(lambda b: {"id": b["id"] + 1}, batch_size=4096).sum("id"), runs)
    out["a"] = n / t
    # (f) map_batches' fixed cost per batch: the same rows in 256-row batches vs whole blocks
    fsrc = rd.range(1_000_000 // scale).materialize()
    t_whole = _timed(lambda: fsrc.map_batches(lambda b: b, batch_size=None).materialize(), runs)
    t_small = _timed(lambda: fsrc.map_batches(lambda b: b, batch_size=256).materialize(), runs)
    out["f_us_per_batch"] = max(t_small - t_whole, 0.0) / ((1_000_000 // scale) / 256) * 1e6
    rows = 12_500_000 // scale
    path = os.path.join(tempfile.gettempdir(), f"bench_data_parquet_{rows}")
    _parquet(path, rows)
    t = _timed(lambda: rd.read_parquet(path).groupby("k").mean("v").take_all(), runs)
    out["b"] = rows / t
    m = 1_000_000 // scale
    src = rd.from_numpy(np.random.rand(m, 10)).materialize() if False else \
        rd.range(m).map_batches(lambda b: {f"c{i}": b["id"] * 1.0 for i in range(10)}).materialize()
    t = _timed(lambda: src.random_shuffle().materialize(), runs)
    out["c"] = m / t
    tsrc = rd.range(m).map_batches(lambda b: {"x": b["id"] * 1.0, "y": b["id"]}).materialize()
    for _ in tsrc.iter_torch_batches(batch_size=256):
        break

    def torch_iter():
        for _ in tsrc.iter_torch_batches(batch_size=256):
            pass

    t = _timed(torch_iter, runs)
    out["d"] = m / t
    ray.shutdown()  # (e) on a 200 MiB store
    if name == "ray":
        ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False)
    else:
        ray.init(num_cpus=2, object_store_memory=200 * 2**20)
    gib = (2**30 // scale) // 8192
    ds = rd.range(gib, override_num_blocks=128).map_batches(
        lambda b: {"id": b["id"], "p": np.ones((len(b["id"]), 1024))}, batch_size=None)

    def rss():
        me = psutil.Process()
        tot = me.memory_info().rss
        for p in me.children(recursive=True):
            try:
                tot += p.memory_info().rss
            except psutil.Error:
                pass
        return tot

    base, peak, stop = rss(), [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.05)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    t = time.perf_counter()
    for _ in ds.iter_batches(batch_size=4096):
        pass
    out["e"] = gib / (time.perf_counter() - t)
    stop.set()
    th.join()
    out["e_peak_mib"] = (peak[0] - base) / 2**20
    ray.shutdown()
    return out


def floor_side(quick):
    import pyarrow as pa
    import pyarrow.parquet as pq

    scale = 10 if quick else 1
    out = {}
    n = 10_000_000 // scale

    def a():
        ids = np.arange(n)
        s = 0
        for i in range(0, n, 4096):
            s += int((ids[i:i + 4096] + 1).sum())
    out["a"] = n / _timed(a, 3)
    rows = 12_500_000 // scale
    path = os.path.join(tempfile.gettempdir(), f"bench_data_parquet_{rows}")
    _parquet(path, rows)
    pa.set_cpu_count(1)
    out["b"] = rows / _timed(lambda: pq.read_table(path, use_threads=False).group_by("k", use_threads=False).aggregate(
        [("v", "mean")]), 3)
    m = 1_000_000 // scale
    arr = np.random.rand(m, 10)
    out["c"] = m / _timed(lambda: arr[np.random.permutation(m)], 3)
    import torch

    cols = {"x": np.arange(m) * 1.0, "y": np.arange(m)}

    def d():
        for i in range(0, m, 256):
            {k: torch.from_numpy(v[i:i + 256]) for k, v in cols.items()}
    out["d"] = m / _timed(d, 3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ray-python")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--engine")
    args = ap.parse_args()
    if args.engine:
        print(json.dumps(engine_side(args.engine, args.quick)))
        return
    results = {"tray": engine_side("tray", args.quick), "floor": floor_side(args.quick)}
    if args.ray_python:
        cmd = [args.ray_python, __file__, "--engine", "ray"] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        results["ray"] = json.loads(lines[-1]) if lines else {"error": proc.stderr[-2000:]}
    names = {"a": "(a) map_batches + sum", "b": "(b) parquet groupby mean", "c": "(c) random_shuffle 1M x 10",
             "d": "(d) iter_torch_batches", "e": "(e) 1 GiB via 200 MiB store"}
    print(f"{'benchmark':32} {'tray rows/s':>14} {'Ray rows/s':>14} {'floor rows/s':>14} {'tray/Ray':>9}")
    ray = results.get("ray", {})
    for k, label in names.items():
        tv, rv, fv = results["tray"].get(k), ray.get(k), results["floor"].get(k)
        ratio = f"{tv / rv:.2f}x" if tv and rv else "n/a"
        print(f"{label:32} {tv or 0:14,.0f} {rv or 0:14,.0f} {fv or 0:14,.0f} {ratio:>9}")
    print(f"(f) map_batches fixed cost per batch: tray {results['tray']['f_us_per_batch']:.1f} us"
          + (f", Ray {ray['f_us_per_batch']:.1f} us" if "f_us_per_batch" in ray else ""))
    print(f"(e) peak node RSS growth: tray {results['tray']['e_peak_mib']:.0f} MiB"
          + (f", Ray {ray['e_peak_mib']:.0f} MiB" if "e_peak_mib" in ray else ""))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
