"""Distributed PyTorch training with tray.train: an MLP on the 8x8 digits, 2 workers (gloo on CPU),
a checkpoint per epoch, and the best checkpoint reloaded in this process afterwards.

    python examples/train_digits.py
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tray
from tray import train
from tray.train import Checkpoint, CheckpointConfig, RunConfig, ScalingConfig
from tray.train.torch import TorchTrainer, prepare_data_loader, prepare_model
from tray.tune.examples.mnist_pytorch import load_digits


def data() -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_digits()
    x = (np.asarray(images, dtype=np.float32).reshape(len(labels), -1) / 16.0)
    order = np.random.default_rng(0).permutation(len(labels))
    return x[order], np.asarray(labels, dtype=np.int64)[order]


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def train_loop_per_worker(config: dict) -> None:
    torch.manual_seed(0)  # reproducible runs (DDP gives every rank the weights of rank 0)
    x, y = data()
    n = int(len(y) * 0.8)
    loader = prepare_data_loader(DataLoader(TensorDataset(torch.tensor(x[:n]), torch.tensor(y[:n])),
                                            batch_size=32, shuffle=True))
    x_test, y_test = torch.tensor(x[n:]), torch.tensor(y[n:])
    model = prepare_model(mlp())  # DistributedDataParallel across the workers
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    for epoch in range(config["epochs"]):
        loader.sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        with torch.no_grad():
            accuracy = (model.module(x_test).argmax(1) == y_test).float().mean().item()
        with tempfile.TemporaryDirectory() as d:
            if train.get_context().get_world_rank() == 0:
                torch.save(model.module.state_dict(), os.path.join(d, "model.pt"))
            train.report({"epoch": epoch, "accuracy": accuracy}, checkpoint=Checkpoint.from_directory(d))


def main() -> None:
    tray.init(num_cpus=2)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"lr": 0.01, "epochs": 10},
        scaling_config=ScalingConfig(num_workers=2),
        run_config=RunConfig(name="digits", storage_path=tempfile.mkdtemp(),
                             checkpoint_config=CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="accuracy")),
    )
    result = trainer.fit()
    print(result.metrics_dataframe[["epoch", "accuracy"]].to_string(index=False))
    best = result.get_best_checkpoint("accuracy", "max")
    model = mlp()
    with best.as_directory() as d:
        model.load_state_dict(torch.load(os.path.join(d, "model.pt")))
    x, y = data()
    n = int(len(y) * 0.8)
    with torch.no_grad():
        accuracy = (model(torch.tensor(x[n:])).argmax(1) == torch.tensor(y[n:])).float().mean().item()
    print(f"best checkpoint reloaded here: accuracy {accuracy:.3f}")
    assert accuracy > 0.9
    tray.shutdown()


if __name__ == "__main__":
    main()
