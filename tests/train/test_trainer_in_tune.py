"""A trainer as a Tune trial: ``Tuner(trainer, param_space={"train_loop_config": ...}).fit()``."""

from __future__ import annotations

import os
import tempfile

import pytest

from tray import train, tune
from tray.train import Checkpoint, RunConfig, ScalingConfig
from tray.train.torch import TorchTrainer


def scaled_loop(config):
    import torch
    import torch.distributed as dist

    t = torch.tensor([config["lr"]])
    dist.all_reduce(t)
    for i in range(2):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, f"rank{train.get_context().get_world_rank()}"), "w") as f:
                f.write(str(i))
            train.report({"lr_sum": t.item(), "step": i, "base": config["base"]},
                         checkpoint=Checkpoint.from_directory(d))


def test_tuner_runs_a_trainer_per_trial(tray2, storage):
    trainer = TorchTrainer(scaled_loop, train_loop_config={"lr": 0.0, "base": 7},
                           scaling_config=ScalingConfig(num_workers=2))
    grid = tune.Tuner(trainer, param_space={"train_loop_config": {"lr": tune.grid_search([0.25, 0.5])}},
                      tune_config=tune.TuneConfig(metric="lr_sum", mode="max"),
                      run_config=RunConfig(name="tuned", storage_path=storage, verbose=0)).fit()
    assert not grid.errors
    sums = sorted(r.metrics["lr_sum"] for r in grid)
    assert sums == pytest.approx([0.5, 1.0])  # each trial's config reached both ranks; base kept from the trainer
    assert all(r.metrics["base"] == 7 and r.metrics["training_iteration"] == 2 for r in grid)
    best = grid.get_best_result()
    assert best.config["train_loop_config"]["lr"] == 0.5
    assert sorted(os.listdir(best.checkpoint.path)) == ["rank0", "rank1"]


def test_param_space_keys_must_be_trainer_arguments(tray2, storage):
    trainer = TorchTrainer(scaled_loop, scaling_config=ScalingConfig(num_workers=2))
    grid = tune.Tuner(trainer, param_space={"lr": 0.1},
                      run_config=RunConfig(name="badkey", storage_path=storage, verbose=0)).fit()
    assert len(grid.errors) == 1 and "train_loop_config" in str(grid.errors[0])
