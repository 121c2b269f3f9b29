"""``tray.train.lightgbm`` (Ray's ``ray.train.lightgbm``): LightGBM training on a worker group
joined by LightGBM's own socket-based distributed mode."""

from ...lowlevel import require as _require

_require("lightgbm", "train")  # without lightgbm, importing tray.train.lightgbm says which extra installs it

from .config import LightGBMConfig, get_network_params  # noqa: E402
from .lightgbm_trainer import LightGBMTrainer  # noqa: E402
from .report_callback import RayTrainReportCallback  # noqa: E402

__all__ = ["LightGBMConfig", "LightGBMTrainer", "RayTrainReportCallback", "get_network_params"]
