"""``train.get_dataset_shard(name)``: this worker's share of a dataset given to the trainer.

The trainer splits each of its ``datasets`` with ``Dataset.streaming_split(num_workers, equal=True)``
so the workers together read every row once per epoch; each gets a ``DataIterator``
(``iter_batches``, ``iter_torch_batches``).
"""

from __future__ import annotations

from typing import Any

from ._session import current_worker_session

__all__ = ["get_dataset_shard"]


def get_dataset_shard(dataset_name: str | None = None) -> Any:
    """This worker's iterator over ``datasets[dataset_name]`` (the only one when None); None when the
    trainer was given no dataset of that name, as in Ray."""
    shards = current_worker_session("train.get_dataset_shard()").dataset_shards
    if dataset_name is None:
        if len(shards) != 1:
            raise ValueError(f"train.get_dataset_shard() needs a name: the trainer has datasets {sorted(shards)}")
        return next(iter(shards.values()))
    return shards.get(dataset_name)
