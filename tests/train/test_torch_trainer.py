"""TorchTrainer end to end: real torch, gloo, 2 worker processes on CPU."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch
from torch import nn

import tray
from tray import train
from tray.train import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    ScalingConfig,
    TrainingFailedError,
)
from tray.train.torch import (
    TorchTrainer,
    get_device,
    prepare_data_loader,
    prepare_model,
)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def digits_loop(config):
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x, y = config["data"]
    n_train = int(len(y) * 0.8)
    train_set = TensorDataset(torch.tensor(x[:n_train]), torch.tensor(y[:n_train]))
    x_test, y_test = torch.tensor(x[n_train:]), torch.tensor(y[n_train:])
    loader = prepare_data_loader(DataLoader(train_set, batch_size=32, shuffle=True))
    model = prepare_model(_mlp())
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(config["epochs"]):
        if train.get_context().get_world_size() > 1:
            loader.sampler.set_epoch(epoch)
        seen = 0
        for xb, yb in loader:
            assert xb.device == get_device()
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            seen += len(yb)
        module = model.module if hasattr(model, "module") else model
        acc = _accuracy(module, x_test, y_test)
        with tempfile.TemporaryDirectory() as d:
            if train.get_context().get_world_rank() == 0:
                torch.save(module.state_dict(), os.path.join(d, "model.pt"))
            train.report({"epoch": epoch, "accuracy": acc, "seen": seen}, checkpoint=Checkpoint.from_directory(d))


def test_digits_mlp_learns_and_its_checkpoint_reloads(tray2, storage, digits):
    order = np.random.default_rng(0).permutation(len(digits[1]))  # test rows from every writer
    x, y = digits[0][order], digits[1][order]
    trainer = TorchTrainer(digits_loop, train_loop_config={"data": (x, y), "lr": 0.01, "epochs": 5},
                           scaling_config=ScalingConfig(num_workers=2),
                           run_config=RunConfig(name="digits", storage_path=storage,
                                                checkpoint_config=CheckpointConfig(num_to_keep=2)))
    result = trainer.fit()
    assert result.error is None
    assert result.metrics["accuracy"] > 0.9, result.metrics
    assert result.metrics["seen"] == pytest.approx(int(len(y) * 0.8) / 2, abs=1)  # each rank saw half the rows
    assert list(result.metrics_dataframe["epoch"]) == [0, 1, 2, 3, 4]
    assert result.path == os.path.join(storage, "digits")
    assert sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_")) == [
        "checkpoint_000003", "checkpoint_000004"]
    assert [m["epoch"] for _, m in result.best_checkpoints] == [3, 4]
    model = _mlp()
    with result.checkpoint.as_directory() as d:
        model.load_state_dict(torch.load(os.path.join(d, "model.pt")))
    n_train = int(len(y) * 0.8)
    acc = _accuracy(model, torch.from_numpy(x[n_train:]), torch.from_numpy(y[n_train:]))
    assert acc == pytest.approx(result.metrics["accuracy"])


def collective_loop():
    import torch.distributed as dist

    ctx = train.get_context()
    t = torch.tensor([float(ctx.get_world_rank() + 1)])
    dist.all_reduce(t)
    gathered = [torch.zeros(1) for _ in range(ctx.get_world_size())]
    dist.all_gather(gathered, torch.tensor([float(os.getpid())]))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, f"rank-{ctx.get_world_rank()}.txt"), "w") as f:
            f.write(str(ctx.get_world_rank()))
        train.report({"sum": t.item(), "pids": sorted(int(g.item()) for g in gathered),
                      "rank": ctx.get_world_rank(), "world": ctx.get_world_size(),
                      "local": [ctx.get_local_rank(), ctx.get_local_world_size(), ctx.get_node_rank()],
                      "env": {k: os.environ[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")},
                      "backend": dist.get_backend(), "name": ctx.get_experiment_name()},
                     checkpoint=Checkpoint.from_directory(d))
    return ctx.get_world_rank()


def test_all_reduce_ranks_env_and_merged_checkpoint(tray2, storage):
    result = TorchTrainer(collective_loop, scaling_config=ScalingConfig(num_workers=2),
                          run_config=RunConfig(name="coll", storage_path=storage)).fit()
    m = result.metrics
    assert m["sum"] == 3.0 and m["rank"] == 0 and m["world"] == 2 and len(set(m["pids"])) == 2
    assert os.getpid() not in m["pids"]  # the loop ran in worker processes
    assert m["local"] == [0, 2, 0] and m["backend"] == "gloo" and m["name"] == "coll"
    assert m["env"] == {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    assert sorted(os.listdir(result.checkpoint.path)) == ["rank-0.txt", "rank-1.txt"]  # every rank's files merged
    assert result.return_value == 0


def resuming_loop(config):
    ctx = train.get_context()
    start = 0
    ckpt = train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d, open(os.path.join(d, "epoch")) as f:
            start = int(f.read()) + 1
    for epoch in range(start, config["epochs"]):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "epoch"), "w") as f:
                f.write(str(epoch))
            train.report({"epoch": epoch, "start": start, "pid": os.getpid()}, checkpoint=Checkpoint.from_directory(d))
        if epoch == config["die_at"] and ctx.get_world_rank() == 1 and not os.path.exists(config["marker"]):
            _wait_until_recorded(config["results"], epoch + 1)  # dying at once could lose this report
            open(config["marker"], "w").close()
            os._exit(1)


def _wait_until_recorded(results: str, rows: int) -> None:
    """Until the run's result.json holds ``rows`` reports (the controller has taken them)."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(results) as f:
                if sum(1 for line in f if line.strip()) >= rows:
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.02)


def test_a_dead_worker_restarts_its_group_from_the_latest_checkpoint(tray2, storage, tmp_path):
    config = {"epochs": 4, "die_at": 1, "marker": str(tmp_path / "died"),
              "results": os.path.join(storage, "restart", "result.json")}
    result = TorchTrainer(resuming_loop, train_loop_config=config, scaling_config=ScalingConfig(num_workers=2),
                          run_config=RunConfig(name="restart", storage_path=storage,
                                               failure_config=FailureConfig(max_failures=1))).fit()
    df = result.metrics_dataframe
    assert list(df["epoch"]) == [0, 1, 2, 3] and list(df["start"]) == [0, 0, 2, 2]
    assert df["pid"][1] != df["pid"][2]  # rank 0 ran in a new process after the restart
    assert result.metrics["epoch"] == 3


def test_past_max_failures_fit_raises_naming_the_worker(tray2, storage, tmp_path):
    config = {"epochs": 4, "die_at": 0, "marker": str(tmp_path / "died"),
              "results": os.path.join(storage, "fails", "result.json")}
    trainer = TorchTrainer(resuming_loop, train_loop_config=config, scaling_config=ScalingConfig(num_workers=2),
                           run_config=RunConfig(name="fails", storage_path=storage,
                                                failure_config=FailureConfig(max_failures=0)))
    with pytest.raises(TrainingFailedError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "worker rank 1" in msg and "pid" in msg and "node" in msg and "exited with code 1" in msg
    assert 1 in info.value.worker_failures and msg.index("worker rank 1") < msg.index("pid")
    # restore() picks the run up from its latest checkpoint (the marker now exists: no second death)
    path = os.path.join(storage, "fails")
    assert TorchTrainer.can_restore(path) and not TorchTrainer.can_restore(str(tmp_path))
    result = TorchTrainer.restore(path).fit()
    assert list(result.metrics_dataframe["epoch"]) == [0, 1, 2, 3]
    assert list(result.metrics_dataframe["start"]) == [0, 1, 1, 1]


def raising_loop():
    raise KeyError("no such column")


def test_a_user_exception_keeps_its_type_and_traceback(tray2, storage):
    with pytest.raises(KeyError) as info:
        TorchTrainer(raising_loop, scaling_config=ScalingConfig(num_workers=2),
                     run_config=RunConfig(storage_path=storage)).fit()
    assert isinstance(info.value, TrainingFailedError)
    assert "raising_loop" in str(info.value) and "no such column" in str(info.value)


def test_num_workers_zero_runs_the_loop_here(storage):
    pids = []

    def loop(config):
        ctx = train.get_context()
        pids.append(os.getpid())
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "x"), "w") as f:
                f.write("1")
            train.report({"world": ctx.get_world_size(), "x": config["x"]}, checkpoint=Checkpoint.from_directory(d))
        model = prepare_model(nn.Linear(2, 2))
        assert isinstance(model, nn.Linear)  # world size 1: not wrapped
        return "done"

    result = TorchTrainer(loop, train_loop_config={"x": 7}, scaling_config=ScalingConfig(num_workers=0),
                          run_config=RunConfig(storage_path=storage)).fit()
    assert pids == [os.getpid()] and result.metrics == {"world": 1, "x": 7}
    assert os.listdir(result.checkpoint.path) == ["x"] and result.return_value == "done"


def test_bad_input_fails_at_once(tray2, storage):
    with pytest.raises(ValueError, match="num_workers"):
        ScalingConfig(num_workers=-1)
    with pytest.raises(TypeError, match="train_loop_per_worker"):
        TorchTrainer("not a function")
    with pytest.raises(ValueError, match="'GPU': 4"):
        TorchTrainer(raising_loop,
                     scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1, "GPU": 4}),
                     run_config=RunConfig(storage_path=storage)).fit()
    with pytest.raises(ValueError, match="more than the cluster can hold"):
        TorchTrainer(raising_loop, scaling_config=ScalingConfig(num_workers=3),
                     run_config=RunConfig(storage_path=storage)).fit()
    with pytest.raises(RuntimeError, match="only available inside a Train worker"):
        train.get_dataset_shard("train")
    with pytest.raises(RuntimeError, match="outside of a Tune trial or a Train worker"):
        train.report({"x": 1})


def gpu_loop(config):
    ctx = train.get_context()
    import json

    with open(os.path.join(config["out"], f"rank-{ctx.get_world_rank()}.json"), "w") as f:
        json.dump({"local": ctx.get_local_rank(), "visible": os.environ["CUDA_VISIBLE_DEVICES"],
                   "own": tray.get_gpu_ids()}, f)


def test_gpu_workers_each_hold_a_gpu_and_see_their_nodes(storage, tmp_path):
    """use_gpu=True on a node with 2 (pretend) GPUs: each worker holds its own GPU, and sees
    its node's workers' GPUs with its own at its local rank (``cuda:<local_rank>``), as in Ray."""
    import json

    from tray.train.torch import TorchConfig

    tray.init(num_cpus=2, num_gpus=2)
    try:
        TorchTrainer(gpu_loop, train_loop_config={"out": str(tmp_path)},
                     scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
                     torch_config=TorchConfig(backend="gloo"),  # (no CUDA here: the GPUs are only scheduled)
                     run_config=RunConfig(name="gpus", storage_path=storage)).fit()
    finally:
        tray.shutdown()
    seen = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert sorted(s["own"][0] for s in seen) == [0, 1] and all(len(s["own"]) == 1 for s in seen)
    for s in seen:
        assert s["visible"] == "0,1" and s["visible"].split(",")[s["local"]] == str(s["own"][0])
