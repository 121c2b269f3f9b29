"""``tray.train.torch`` (Ray's ``ray.train.torch``): TorchTrainer and the helpers a torch
training loop uses."""

from ...lowlevel import require

require("torch", "train")

from .config import TorchConfig
from .torch_trainer import TorchTrainer
from .train_loop_utils import (
    enable_reproducibility,
    get_device,
    get_devices,
    prepare_data_loader,
    prepare_model,
)

__all__ = [
    "TorchConfig",
    "TorchTrainer",
    "enable_reproducibility",
    "get_device",
    "get_devices",
    "prepare_data_loader",
    "prepare_model",
]
