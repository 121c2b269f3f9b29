"""Tune overhead: tray.tune beside bare Optuna (and Ray Tune, given a Ray interpreter), one run.

Workloads (each timed around ``Tuner.fit()`` / ``study.optimize``, after ``init``):
  (a) 100 trials of a trivial function trainable, one report each
  (b) 20 trials x 100 reports each
  (p) the per-report overhead: one trial reporting N times, minus the same loop without reports
  (c) the seed program (3 trials of the digits ConvNet, 10 epochs each) — tray only: Ray 2.x has no
      ``tune.track``

    python benchmarks/bench_tune.py [--runs 3] [--quick] [--ray-python /tmp/rayvenv/bin/python]

Ray Tune runs in its own interpreter (a subprocess), twice for (a): with its defaults (a new actor
per trial) and with ``reuse_actors=True``. Printed: medians, and tray's ratio to each baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

RAY_SCRIPT = r'''
import json, sys, tempfile, time, os
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
import ray
from ray import tune
args = json.loads(sys.argv[1])
ray.init(num_cpus=args["cpus"], include_dashboard=False, log_to_driver=False)
def trivial(config):
    tune.report({"score": config["x"]})
def many(config):
    for i in range(args["reports"]):
        tune.report({"score": config["x"] * i})
out = {}
def fit(fn, n, reuse):
    t = time.perf_counter()
    tune.Tuner(fn, param_space={"x": tune.uniform(0, 1)},
               tune_config=tune.TuneConfig(num_samples=n, reuse_actors=reuse),
               run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0)).fit()
    return time.perf_counter() - t
for _ in range(args["runs"]):
    out.setdefault("a_reuse", []).append(fit(trivial, args["trials"], True))
    if args["defaults"]:
        out.setdefault("a_default", []).append(fit(trivial, args["trials"], False))
    out.setdefault("b", []).append(fit(many, args["many_trials"], True))
print("RESULT " + json.dumps(out))
'''


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def tray_side(args: argparse.Namespace) -> dict[str, list[float]]:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1" if args.no_tbx else "0")
    import tray
    from tray import tune

    t = time.perf_counter()
    tray.init(num_cpus=args.cpus)
    out: dict[str, list[float]] = {"init": [time.perf_counter() - t]}
    reports = args.reports

    def trivial(config):
        tune.report({"score": config["x"]})

    def many(config):
        for i in range(reports):
            tune.report({"score": config["x"] * i})

    def fit(fn, n: int) -> float:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            tune.Tuner(fn, param_space={"x": tune.uniform(0, 1)}, tune_config=tune.TuneConfig(num_samples=n),
                       run_config=tune.RunConfig(storage_path=d, verbose=0)).fit()
            return time.perf_counter() - t

    n_per = args.per_report

    def reporting(config):
        t0 = time.perf_counter()
        for i in range(n_per):
            tune.report({"i": i})
        tune.report({"elapsed": time.perf_counter() - t0})

    def silent(config):
        t0 = time.perf_counter()
        for i in range(n_per):
            {"i": i}  # noqa: B018 - the same loop without the report
        tune.report({"elapsed": time.perf_counter() - t0})

    # each timed fit gets a fresh node, as a program calling Tuner.fit() once does (tray.init's
    # prestarted workers become the first runners); init is timed apart
    tray.shutdown()
    for _ in range(args.runs):
        for key, fn, n in (("a1", trivial, 1), ("a", trivial, args.trials), ("b", many, args.many_trials)):
            t = time.perf_counter()
            tray.init(num_cpus=args.cpus)
            out["init"].append(time.perf_counter() - t)
            out.setdefault(key, []).append(fit(fn, n))
            tray.shutdown()
    tray.init(num_cpus=args.cpus)
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            r1 = tune.Tuner(reporting, run_config=tune.RunConfig(storage_path=d, verbose=0)).fit()
            whole = time.perf_counter() - t
            r0 = tune.Tuner(silent, run_config=tune.RunConfig(storage_path=d, verbose=0)).fit()
        # in the trial (what user code waits for) and end to end (including the controller's
        # writing of each row to result.json and progress.csv)
        out.setdefault("p_trial", []).append((r1[0].metrics["elapsed"] - r0[0].metrics["elapsed"]) / n_per)
        out.setdefault("p_total", []).append(whole / n_per)
        if not args.quick:
            out.setdefault("c", []).append(seed_program())
    tray.shutdown()
    return out


def seed_program() -> float:
    code = open(os.path.join(os.path.dirname(__file__), "..", "examples", "tune_seed.py")).read()
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "TRAY_RESULTS_DIR": d}
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=600)
        return time.perf_counter() - t


def optuna_side(args: argparse.Namespace) -> dict[str, list[float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: dict[str, list[float]] = {}
    for _ in range(args.runs):
        t = time.perf_counter()
        study = optuna.create_study()
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=args.trials)
        out.setdefault("a", []).append(time.perf_counter() - t)
    return out


def ray_side(args: argparse.Namespace) -> dict[str, list[float]]:
    payload = json.dumps({"cpus": args.cpus, "runs": args.runs, "trials": args.trials, "reports": args.reports,
                          "many_trials": args.many_trials, "defaults": args.ray_defaults})
    proc = subprocess.run([args.ray_python, "-c", RAY_SCRIPT, payload], capture_output=True, text=True, timeout=3600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        print(f"Ray side failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return {}
    return json.loads(line[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a small round that only checks everything runs")
    p.add_argument("--ray-python", default=None, help="an interpreter with Ray installed: run Ray Tune too")
    p.add_argument("--ray-defaults", action="store_true", help="also time Ray Tune (a) with reuse_actors=False "
                   "(minutes: a new actor per trial)")
    p.add_argument("--no-tbx", action="store_true", help="no TensorBoard event files on tray's side")
    args = p.parse_args()
    args.trials, args.many_trials, args.reports, args.per_report = 100, 20, 100, 20000
    if args.quick:
        args.runs, args.trials, args.many_trials, args.reports, args.per_report = 1, 10, 3, 10, 500

    tray_r = tray_side(args)
    opt_r = optuna_side(args)
    ray_r = ray_side(args) if args.ray_python else {}

    init = median(tray_r["init"])
    print(f"tray.tune benchmark ({args.cpus} CPUs, medians of {args.runs}; tray.init took {init:.3f} s)")
    rows = [(f"(a) {args.trials} trivial trials, 1 report each", "a", "a", "a_reuse"),
            (f"(b) {args.many_trials} trials x {args.reports} reports", "b", None, "b")]
    print(f"{'workload':44s} {'tray':>9s} {'optuna':>9s} {'Ray':>9s}  ratios")
    for label, tk, ok, rk in rows:
        t = median(tray_r[tk])
        o = median(opt_r[ok]) if ok and ok in opt_r else None
        r = median(ray_r[rk]) if rk in ray_r else None
        ratios = []
        if o:
            ratios.append(f"tray/optuna {t / o:.1f}x")
        if r:
            ratios.append(f"Ray/tray {r / t:.1f}x")
        print(f"{label:44s} {t:8.3f}s {(f'{o:8.3f}s' if o else '       —'):>9s} "
              f"{(f'{r:8.3f}s' if r else '       —'):>9s}  {', '.join(ratios)}")
    a1 = median(tray_r["a1"])
    print(f"    of which starting: one trivial trial on a fresh node takes {a1:.3f} s (worker process start); "
          f"each further trial {(median(tray_r['a']) - a1) / (args.trials - 1) * 1e3:.2f} ms")
    if "a_default" in ray_r:
        print(f"{'(a) Ray Tune with reuse_actors=False':44s} {'':9s} {'':9s} {median(ray_r['a_default']):8.3f}s  "
              f"Ray/tray {median(ray_r['a_default']) / median(tray_r['a']):.1f}x")
    print(f"(p) per-report overhead: {median(tray_r['p_trial']) * 1e6:.1f} us in the trial, "
          f"{median(tray_r['p_total']) * 1e6:.1f} us end to end (tray)")
    if "c" in tray_r:
        seed = median(tray_r["c"])
        print(f"(c) the seed program (3 trials x 10 epochs, subprocess incl. start-up): {seed:.2f} s (tray)")


if __name__ == "__main__":
    main()
