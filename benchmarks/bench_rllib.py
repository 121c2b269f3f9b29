"""PPO on CartPole-v1 with 2 env runners: wall time and env steps to a mean return of 150 and 450,
the time to build the algorithm, and env steps per second while training; tray, Ray RLlib (when
``--ray-python`` names an interpreter with Ray installed) and Stable-Baselines3 (``--sb3``, in this
interpreter: ``pip install stable-baselines3``) in the same run, alternating.

    python benchmarks/bench_rllib.py [--runs 3] [--ray-python /tmp/rayvenv/bin/python] [--sb3] [--quick]

Settings (every side): lr 3e-4, 2,000-step train batches (2 runners x 1,000; SB3: 2 envs x 1,000),
minibatch 128, 6 epochs, seeded; the rest each library's defaults. "Mean return" is the mean over
the episodes that ended in the iteration (Ray 2.60's ``env_runners/episode_return_mean``; for SB3,
the episodes of the rollout, not its 100-episode ``ep_rew_mean``, which lags).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap

RUN = textwrap.dedent('''
    import json, sys, time
    SIDE, SEED, MAX_STEPS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    if SIDE == "sb3":
        import numpy as np
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        import_s = time.perf_counter() - t0

        class Track(BaseCallback):
            def __init__(self):
                super().__init__()
                self.out = {"t150": None, "t450": None, "s150": None, "s450": None}
                self.rets = []
                self.reached = False

            def _on_training_start(self):
                self.start = time.perf_counter()

            def _on_step(self):
                self.rets += [i["episode"]["r"] for i in self.locals["infos"] if "episode" in i]
                return not self.reached

            def _on_rollout_end(self):
                if not self.rets:
                    return
                ret, steps, now = float(np.mean(self.rets)), self.num_timesteps, time.perf_counter() - self.start
                self.rets = []
                if self.out["t150"] is None and ret >= 150:
                    self.out["t150"], self.out["s150"] = now, steps
                if ret >= 450:
                    self.out["t450"], self.out["s450"] = now, steps
                    self.reached = True

        t = time.perf_counter()
        model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=SEED), learning_rate=3e-4, n_steps=1000,
                    batch_size=128, n_epochs=6, seed=SEED, device="cpu")
        track = Track()
        out = {"build_s": time.perf_counter() - t, "import_s": import_s}
        model.learn(total_timesteps=MAX_STEPS, callback=track)
        out.update(track.out)
        out["steps_per_s"] = model.num_timesteps / (time.perf_counter() - track.start)
        print("RESULT " + json.dumps(out))
        sys.exit(0)
    if SIDE == "ray":
        import ray
        from ray.rllib.algorithms.ppo import PPOConfig
        import_s = time.perf_counter() - t0
        ray.init(num_cpus=3, include_dashboard=False)
    else:
        import tray as ray
        from tray.rllib.algorithms.ppo import PPOConfig  # torch loads in build_algo, where the learner needs it
        import_s = time.perf_counter() - t0
        ray.init(num_cpus=3)
    cfg = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
           .training(lr=3e-4, train_batch_size_per_learner=2000, minibatch_size=128, num_epochs=6)
           .debugging(seed=SEED))
    t = time.perf_counter()
    algo = cfg.build_algo()
    build = time.perf_counter() - t
    start = time.perf_counter()
    out = {"build_s": build, "import_s": import_s, "t150": None, "t450": None, "s150": None, "s450": None}
    steps = 0
    while steps < MAX_STEPS:
        r = algo.train()
        steps = r["env_runners"]["num_env_steps_sampled_lifetime"]
        ret = r["env_runners"].get("episode_return_mean", float("nan"))
        now = time.perf_counter() - start
        if out["t150"] is None and ret >= 150:
            out["t150"], out["s150"] = now, steps
        if ret >= 450:
            out["t450"], out["s450"] = now, steps
            break
    out["steps_per_s"] = steps / (time.perf_counter() - start)
    algo.stop()
    ray.shutdown()
    print("RESULT " + json.dumps(out))
''')


def run(python: str, side: str, seed: int, max_steps: int) -> dict:
    proc = subprocess.run([python, "-c", RUN, side, str(seed), str(max_steps)], capture_output=True, text=True,
                          timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{side} run failed:\n{proc.stderr[-2000:]}")


def med(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=200_000)
    parser.add_argument("--ray-python", default=None)
    parser.add_argument("--sb3", action="store_true", help="also run Stable-Baselines3's PPO (in this interpreter)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: one run of at most 4,000 env steps")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.max_steps = 1, 4000
    sides = [("tray", sys.executable)] + ([("ray", args.ray_python)] if args.ray_python else [])
    sides += [("sb3", sys.executable)] if args.sb3 else []
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, load average at start "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, list[dict]] = {s: [] for s, _ in sides}
    for seed in range(args.runs):
        for side, python in sides:  # alternate, so load changes hit both sides alike
            results[side].append(run(python, side, seed, args.max_steps))
            print(side, seed, results[side][-1], flush=True)
    for rows in results.values():
        for r in rows:
            r["import_build_s"] = r["import_s"] + r["build_s"]
    keys = [("build_s", "build the algorithm (s)"), ("import_build_s", "import the library + build (s)"),
            ("t150", "wall time to return 150 (s)"),
            ("s150", "env steps to return 150"), ("t450", "wall time to return 450 (s)"),
            ("s450", "env steps to return 450"), ("steps_per_s", "env steps/s while training")]
    print(f"\n| PPO CartPole-v1, 2 env runners, medians of {args.runs} | " + " | ".join(s for s, _ in sides) + " |")
    print("| --- |" + " ---: |" * len(sides))
    for key, label in keys:
        cells = []
        for side, _ in sides:
            v = med([r[key] for r in results[side]])
            small = isinstance(v, float) and v < 1000
            cells.append("not reached" if v is None else f"{v:,.2f}" if small else f"{v:,.0f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)")


if __name__ == "__main__":
    main()
