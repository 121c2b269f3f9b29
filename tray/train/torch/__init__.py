"""``tray.train.torch`` (Ray's ``ray.train.torch``): TorchTrainer and the helpers a torch
training loop uses."""

from ...lowlevel import require as _require

_require("torch", "train")  # without torch, importing tray.train.torch says which extra installs it

from .config import TorchConfig  # noqa: E402
from .torch_trainer import TorchTrainer  # noqa: E402
from .train_loop_utils import (  # noqa: E402
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
