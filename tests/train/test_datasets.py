"""``datasets=`` and ``train.get_dataset_shard``: the workers together see every row once per epoch."""

from __future__ import annotations

import tray.data
from tray import train
from tray.train import RunConfig, ScalingConfig, UserCallback
from tray.train.torch import TorchTrainer


def shard_loop(config):
    shard = train.get_dataset_shard("train")
    assert train.get_dataset_shard("missing") is None
    for epoch in range(2):
        seen = []
        for batch in shard.iter_torch_batches(batch_size=16):
            seen += [int(v) for v in batch["id"]]
        train.report({"epoch": epoch, "ids": seen, "rank": train.get_context().get_world_rank()})


class Collect(UserCallback):
    def __init__(self) -> None:
        self.rounds: list[list[dict]] = []

    def after_report(self, run_context, metrics, checkpoint):
        self.rounds.append(metrics)


def test_shards_cover_every_row_once_per_epoch(tray2, storage):
    collect = Collect()
    ds = tray.data.range(100)
    # half a CPU per worker: the dataset's read tasks need the other CPU of this 2-CPU cluster
    TorchTrainer(shard_loop, datasets={"train": ds},
                 scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
                 run_config=RunConfig(storage_path=storage, callbacks=[collect])).fit()
    assert len(collect.rounds) == 2
    for rnd in collect.rounds:
        assert [m["rank"] for m in rnd] == [0, 1]
        a, b = (m["ids"] for m in rnd)
        assert len(a) == len(b) == 50  # equal shares
        assert sorted(a + b) == list(range(100))  # every row once
