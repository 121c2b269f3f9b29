"""``TorchTrainer`` (Ray's ``ray.train.torch.TorchTrainer``): a DataParallelTrainer whose
workers form a torch.distributed process group before the loop runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._air.checkpoint import Checkpoint
from ..._air.config import RunConfig, ScalingConfig
from ..data_parallel_trainer import DataParallelTrainer
from .config import TorchConfig

__all__ = ["TorchTrainer"]


class TorchTrainer(DataParallelTrainer):
    """Distributed data-parallel PyTorch training: gloo on CPU, NCCL with ``use_gpu=True``."""

    def __init__(self, train_loop_per_worker: Callable[..., Any], *, train_loop_config: dict[str, Any] | None = None,
                 torch_config: TorchConfig | None = None, scaling_config: ScalingConfig | None = None,
                 run_config: RunConfig | None = None, datasets: dict[str, Any] | None = None,
                 dataset_config: Any = None, metadata: dict[str, Any] | None = None,
                 resume_from_checkpoint: Checkpoint | None = None) -> None:
        if torch_config is not None and not isinstance(torch_config, TorchConfig):
            raise TypeError(f"torch_config must be a TorchConfig, got {type(torch_config).__name__}")
        super().__init__(train_loop_per_worker, train_loop_config=train_loop_config,
                         backend_config=torch_config or TorchConfig(), scaling_config=scaling_config,
                         run_config=run_config, datasets=datasets, dataset_config=dataset_config,
                         metadata=metadata, resume_from_checkpoint=resume_from_checkpoint)
