"""Helpers for the inside of a torch ``train_loop_per_worker`` (Ray's
``ray.train.torch.train_loop_utils``): the worker's device, a model wrapped for
DistributedDataParallel, a DataLoader with a DistributedSampler whose batches land on the device.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

from ..._air.session import get_context

__all__ = ["enable_reproducibility", "get_device", "get_devices", "prepare_data_loader", "prepare_model"]


def _torch() -> Any:
    from ...lowlevel import require

    return require("torch", "train")


def get_devices() -> list[Any]:
    """This worker's devices: ``cuda:<local_rank>`` with GPUs (of the ones visible), else the CPU."""
    torch = _torch()
    if torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", None) != "":
        count = torch.cuda.device_count()
        if count:
            local = get_context().get_local_rank()
            return [torch.device(f"cuda:{local % count}")]
    return [torch.device("cpu")]


def get_device() -> Any:
    """This worker's device (Ray's ``ray.train.torch.get_device``)."""
    return get_devices()[0]


def _world_size() -> int:
    torch = _torch()
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def prepare_model(model: Any, move_to_device: bool | Any = True, parallel_strategy: str | None = "ddp",
                  parallel_strategy_kwargs: dict[str, Any] | None = None) -> Any:
    """Move ``model`` to this worker's device and, when the group has more than one worker, wrap it in
    DistributedDataParallel (``parallel_strategy="fsdp"`` for FullyShardedDataParallel, None for neither)."""
    torch = _torch()
    if parallel_strategy not in ("ddp", "fsdp", None):
        raise ValueError("prepare_model(parallel_strategy=...) must be 'ddp', 'fsdp' or None, "
                         f"got {parallel_strategy!r}")
    device = move_to_device if isinstance(move_to_device, torch.device) else get_device()
    if move_to_device is not False:
        model = model.to(device)
    if parallel_strategy is None or _world_size() <= 1:
        return model
    kwargs = dict(parallel_strategy_kwargs or {})
    if parallel_strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel(model, **kwargs)
    if device.type == "cuda":
        kwargs.setdefault("device_ids", [device])
        kwargs.setdefault("output_device", device)
    return torch.nn.parallel.DistributedDataParallel(model, **kwargs)


class _DeviceLoader:
    """A DataLoader whose batches are moved to ``device``; ``len``, ``sampler`` and ``dataset`` pass through."""

    def __init__(self, loader: Any, device: Any) -> None:
        self._loader = loader
        self.device = device

    def _move(self, item: Any) -> Any:
        torch = _torch()
        if isinstance(item, torch.Tensor):
            return item.to(self.device, non_blocking=True)
        if isinstance(item, (list, tuple)):
            moved = [self._move(x) for x in item]
            return type(item)(moved) if not hasattr(item, "_fields") else type(item)(*moved)
        if isinstance(item, dict):
            return {k: self._move(v) for k, v in item.items()}
        return item

    def __iter__(self) -> Iterator[Any]:
        for batch in self._loader:
            yield self._move(batch)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def prepare_data_loader(data_loader: Any, add_dist_sampler: bool = True, move_to_device: bool = True,
                        auto_transfer: bool = True) -> Any:
    """Give ``data_loader`` a DistributedSampler (each worker sees its share of every epoch; keeps
    the loader's shuffle setting) and move its batches to this worker's device."""
    torch = _torch()
    from torch.utils.data import (
        DataLoader,
        DistributedSampler,
        IterableDataset,
        RandomSampler,
        SequentialSampler,
    )

    if not isinstance(data_loader, DataLoader):
        raise TypeError(f"prepare_data_loader takes a torch DataLoader, got {type(data_loader).__name__}")
    if add_dist_sampler and _world_size() > 1 and not isinstance(data_loader.sampler, DistributedSampler) \
            and not isinstance(data_loader.dataset, IterableDataset):
        shuffle = isinstance(data_loader.sampler, RandomSampler)
        if not isinstance(data_loader.sampler, (RandomSampler, SequentialSampler)):
            raise ValueError("prepare_data_loader: the DataLoader has a custom sampler; give it a DistributedSampler "
                             "yourself or pass add_dist_sampler=False")
        ctx = get_context()
        sampler: Any = DistributedSampler(data_loader.dataset, num_replicas=ctx.get_world_size(),
                                     rank=ctx.get_world_rank(), shuffle=shuffle)
        data_loader = DataLoader(
            data_loader.dataset, batch_size=data_loader.batch_size, sampler=sampler,
            num_workers=data_loader.num_workers, collate_fn=data_loader.collate_fn, pin_memory=data_loader.pin_memory,
            drop_last=data_loader.drop_last, timeout=data_loader.timeout, worker_init_fn=data_loader.worker_init_fn,
            generator=data_loader.generator, persistent_workers=data_loader.persistent_workers,
            prefetch_factor=data_loader.prefetch_factor if data_loader.num_workers > 0 else None)
    if move_to_device:
        device = get_device()
        if device != torch.device("cpu") or auto_transfer:
            return _DeviceLoader(data_loader, device)
    return data_loader


def enable_reproducibility(seed: int = 0) -> None:
    """Seed torch, numpy and random alike and make torch choose deterministic algorithms."""
    torch = _torch()
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
