"""``tray.train.xgboost`` (Ray's ``ray.train.xgboost``): XGBoost training on a worker group joined
by XGBoost's own collective (a rabit tracker on rank 0, every worker in its communicator)."""

from ...lowlevel import require as _require

_require("xgboost", "train")  # without xgboost, importing tray.train.xgboost says which extra installs it

from .config import XGBoostConfig  # noqa: E402
from .report_callback import RayTrainReportCallback  # noqa: E402
from .xgboost_trainer import XGBoostTrainer  # noqa: E402

__all__ = ["RayTrainReportCallback", "XGBoostConfig", "XGBoostTrainer"]
