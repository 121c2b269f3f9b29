"""``tray.train`` (Ray's ``ray.train``): distributed training on a group of worker actors.

``TorchTrainer(train_loop_per_worker, scaling_config=ScalingConfig(num_workers=2)).fit()``
starts the workers in a placement group, sets torch.distributed up on them and runs the loop;
``train.report(metrics, checkpoint=...)`` inside it stores checkpoints under
``storage_path/name/``; a failed worker restarts the whole group from the latest checkpoint.
"""

from .._air import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    Result,
    RunConfig,
    ScalingConfig,
)
from .._air.session import get_checkpoint, report
from ._errors import TrainingFailedError, WorkerGroupError
from .backend import BackendConfig
from .callback import UserCallback
from .context import TrainContext, get_context
from .data_parallel_trainer import DataParallelTrainer
from .dataset import get_dataset_shard

TRAIN_DATASET_KEY = "train"

__all__ = [
    "TRAIN_DATASET_KEY",
    "BackendConfig",
    "Checkpoint",
    "CheckpointConfig",
    "DataParallelTrainer",
    "FailureConfig",
    "Result",
    "RunConfig",
    "ScalingConfig",
    "TrainContext",
    "TrainingFailedError",
    "UserCallback",
    "WorkerGroupError",
    "get_checkpoint",
    "get_context",
    "get_dataset_shard",
    "report",
]
