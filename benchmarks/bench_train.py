"""Train overhead: the digits MLP (5 epochs, 2 workers, gloo on CPU) under tray's TorchTrainer,
as plain torch DDP (2 processes from ``torch.multiprocessing``), as one process, and under Ray
Train (given a Ray interpreter), in one run; plus a group restart after a worker's death.

    python benchmarks/bench_train.py [--runs 3] [--epochs 5] [--quick] [--ray-python /tmp/rayvenv/bin/python]

Each workload runs the same loop: an 8x8-digits MLP (64-64-10), Adam, batch 32, a DistributedSampler,
DDP, and after every epoch the test accuracy and a checkpoint of the model (rank 0's state dict; the
plain runs write it to a file). Times: ``fit()`` (tray, Ray; their ``init`` apart), the spawn-to-join
of the DDP processes, a fresh ``python`` for the one-process run. Printed: medians and ratios.
Restart: a worker ``os._exit(1)``s after epoch 1; the extra time its group's restart adds (the gap
between the reports around it minus a normal epoch's gap).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# The training step every variant shares (exec'd by the Ray and one-process subprocesses too).
COMMON = r'''
import os, time, tempfile
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, DistributedSampler

def digits(path):
    d = np.load(path)
    x = (d["images"].reshape(len(d["labels"]), -1) / 16.0).astype(np.float32)
    y = d["labels"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    return x[order], y[order]

def mlp():
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

def run_epochs(x, y, epochs, rank, world, wrap, report, die_after=None, start=0):
    torch.manual_seed(0)
    n = int(len(y) * 0.8)
    train_set = TensorDataset(torch.tensor(x[:n]), torch.tensor(y[:n]))
    xt, yt = torch.tensor(x[n:]), torch.tensor(y[n:])
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank) if world > 1 else None
    loader = DataLoader(train_set, batch_size=32, shuffle=sampler is None, sampler=sampler)
    model = wrap(mlp())
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start, epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
        module = model.module if hasattr(model, "module") else model
        with torch.no_grad():
            acc = (module(xt).argmax(1) == yt).float().mean().item()
        report(epoch, acc, module)
        if die_after is not None and epoch == die_after and rank == 1:
            os._exit(1)
    return acc
'''

ONE_PROCESS = COMMON + r'''
import sys
x, y = digits(sys.argv[1])
d = tempfile.mkdtemp()
def report(epoch, acc, module):
    torch.save(module.state_dict(), os.path.join(d, "model.pt"))
print(run_epochs(x, y, int(sys.argv[2]), 0, 1, lambda m: m, report))
'''

RAY_SCRIPT = COMMON + r'''
import json, sys
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
import ray
from ray import train
from ray.train import ScalingConfig, RunConfig, Checkpoint
from ray.train.torch import TorchTrainer, prepare_model
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
init_s = time.perf_counter() - t0
x, y = digits(args["data"])

def loop(config):
    ctx = train.get_context()
    def report(epoch, acc, module):
        with tempfile.TemporaryDirectory() as d:
            if ctx.get_world_rank() == 0:
                torch.save(module.state_dict(), os.path.join(d, "model.pt"))
            train.report({"epoch": epoch, "accuracy": acc}, checkpoint=Checkpoint.from_directory(d))
    run_epochs(config["x"], config["y"], config["epochs"], ctx.get_world_rank(), ctx.get_world_size(),
               prepare_model, report)

fits = []
for _ in range(args["runs"]):
    t = time.perf_counter()
    res = TorchTrainer(loop, train_loop_config={"x": x, "y": y, "epochs": args["epochs"]},
                       scaling_config=ScalingConfig(num_workers=2),
                       run_config=RunConfig(storage_path=tempfile.mkdtemp())).fit()
    fits.append(time.perf_counter() - t)
print("RESULT " + json.dumps({"init_s": init_s, "fit_s": fits, "accuracy": res.metrics["accuracy"]}))
ray.shutdown()
'''

DATA = None


def data_file() -> str:
    from tray.tune.examples import mnist_pytorch

    return mnist_pytorch.DATA_FILE


ns: dict = {}
exec(COMMON, ns)  # noqa: S102 - the shared loop, defined once as text for the subprocesses


def _ddp_worker(rank: int, world: int, port: int, path: str, epochs: int) -> None:
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = ns["digits"](path)
    d = tempfile.mkdtemp()

    def report(epoch, acc, module):
        if rank == 0:
            ns["torch"].save(module.state_dict(), os.path.join(d, "model.pt"))
        dist.barrier()

    from torch.nn.parallel import DistributedDataParallel

    ns["run_epochs"](x, y, epochs, rank, world, DistributedDataParallel, report)
    dist.destroy_process_group()


def plain_ddp(path: str, epochs: int) -> float:
    import torch.multiprocessing as mp

    from tray.train._worker import free_port

    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # what torchrun sets for several processes per machine
    try:
        t = time.perf_counter()
        mp.spawn(_ddp_worker, args=(2, free_port(), path, epochs), nprocs=2, join=True)
        return time.perf_counter() - t
    finally:
        if old is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = old


def one_process(path: str, epochs: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", ONE_PROCESS, path, str(epochs)], check=True, capture_output=True)
    return time.perf_counter() - t


def tray_loop(config):
    from tray import train
    from tray.train import Checkpoint
    from tray.train.torch import prepare_model

    ctx = train.get_context()
    start = 0
    ckpt = train.get_checkpoint()
    if ckpt is not None:
        start = ckpt.get_metadata()["epoch"] + 1

    def report(epoch, acc, module):
        with tempfile.TemporaryDirectory() as d:
            if ctx.get_world_rank() == 0:
                ns["torch"].save(module.state_dict(), os.path.join(d, "model.pt"))
            ck = Checkpoint.from_directory(d)
            ck.set_metadata({"epoch": epoch})
            train.report({"epoch": epoch, "accuracy": acc, "t": time.time()}, checkpoint=ck)

    die = config["die_after"] if not os.path.exists(config["marker"]) else None
    if die is not None and ctx.get_world_rank() == 1:
        open(config["marker"], "w").close()
    ns["run_epochs"](config["x"], config["y"], config["epochs"], ctx.get_world_rank(), ctx.get_world_size(),
                     prepare_model, report, die_after=die, start=start)


def tray_fit(x, y, epochs: int, die_after: int | None = None) -> tuple[float, object]:
    from tray.train import FailureConfig, RunConfig, ScalingConfig
    from tray.train.torch import TorchTrainer

    marker = tempfile.mktemp()
    if die_after is None:
        open(marker, "w").close()
    t = time.perf_counter()
    result = TorchTrainer(tray_loop, train_loop_config={"x": x, "y": y, "epochs": epochs, "die_after": die_after,
                                                        "marker": marker},
                          scaling_config=ScalingConfig(num_workers=2),
                          run_config=RunConfig(storage_path=tempfile.mkdtemp(),
                                               failure_config=FailureConfig(max_failures=1))).fit()
    return time.perf_counter() - t, result


def ray_side(ray_python: str, path: str, epochs: int, runs: int) -> dict | None:
    proc = subprocess.run([ray_python, "-c", RAY_SCRIPT, json.dumps({"data": path, "epochs": epochs, "runs": runs})],
                          capture_output=True, text=True, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"Ray run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one short run of each (a smoke test)")
    ap.add_argument("--ray-python", default=None, help="a Python with Ray installed, to run Ray Train's side")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.epochs = 1, 1
    import tray

    path = data_file()
    x, y = ns["digits"](path)
    rows: dict[str, float] = {}
    t = time.perf_counter()
    tray.init(num_cpus=2)
    rows["tray init"] = time.perf_counter() - t
    fits, ddps, ones, acc = [], [], [], 0.0
    for _ in range(args.runs):  # interleaved, so a change in the machine's load hits every variant alike
        s, res = tray_fit(x, y, args.epochs)
        fits.append(s)
        acc = res.metrics["accuracy"]
        ddps.append(plain_ddp(path, args.epochs))
        ones.append(one_process(path, args.epochs))
    rows["tray TorchTrainer fit"] = statistics.median(fits)
    rows["plain DDP (2 processes)"] = statistics.median(ddps)
    rows["one process (fresh python)"] = statistics.median(ones)
    restart = None
    if not args.quick:
        gaps = []
        for _ in range(args.runs):
            _, res = tray_fit(x, y, 4, die_after=1)
            ts = list(res.metrics_dataframe["t"])
            normal = statistics.median([ts[1] - ts[0], ts[3] - ts[2]])
            gaps.append((ts[2] - ts[1]) - normal)
        restart = statistics.median(gaps)
    tray.shutdown()
    ray = ray_side(args.ray_python, path, args.epochs, args.runs) if args.ray_python else None
    if ray is not None:
        rows["ray init"] = ray["init_s"]
        rows["Ray Train fit"] = statistics.median(ray["fit_s"])

    print(f"tray Train benchmark: digits MLP, {args.epochs} epochs, 2 workers (gloo, CPU), medians of {args.runs}; "
          f"final accuracy {acc:.3f}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for name, value in rows.items():
        print(f"  {name:32s} {value:8.2f} s")
    ddp = rows["plain DDP (2 processes)"]
    tray_over = rows["tray TorchTrainer fit"] - ddp
    print(f"  tray overhead over plain DDP     {tray_over:8.2f} s")
    if ray is not None:
        ray_over = rows["Ray Train fit"] - ddp
        print(f"  Ray Train overhead over plain DDP {ray_over:7.2f} s")
        print(f"  ratio Ray Train fit / tray fit   {rows['Ray Train fit'] / rows['tray TorchTrainer fit']:8.2f}x")
        if ray_over > 0:
            print(f"  tray overhead / Ray overhead     {tray_over / ray_over:8.2f}")
    if restart is not None:
        print(f"  group restart after a death      {restart:8.2f} s (added to the epoch it interrupted)")


if __name__ == "__main__":
    main()
