"""``RayTrainReportCallback`` for XGBoost (Ray's ``ray.train.xgboost.RayTrainReportCallback``):
an ``xgboost.callback.TrainingCallback`` that reports each round's evaluation metrics with
``train.report`` and checkpoints the booster as ``model.ubj`` (every ``frequency`` rounds and at
the end); rank 0 writes the checkpoint, every rank reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xgboost import Booster
from xgboost.callback import TrainingCallback

from ..._air.checkpoint import Checkpoint
from .._gbdt import ReportPolicy, load_model

__all__ = ["RayTrainReportCallback"]


def _flatten(evals_log: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for data, metrics in evals_log.items():
        for metric, values in metrics.items():
            last = values[-1]
            out[f"{data}-{metric}"] = last[0] if isinstance(last, tuple) else last  # xgb.cv: (mean, std)
    return out


class RayTrainReportCallback(TrainingCallback):
    """Pass to ``xgboost.train(..., callbacks=[RayTrainReportCallback()])`` inside the training loop.

    ``metrics``: None reports every ``"<eval name>-<metric>"``; a name or list picks some; a dict
    renames (report name -> metric). ``frequency``: checkpoint every that many rounds (0: never
    during training); ``checkpoint_at_end``: checkpoint after the last round."""

    CHECKPOINT_NAME = "model.ubj"

    def __init__(self, metrics: str | list[str] | dict[str, str] | None = None, filename: str = CHECKPOINT_NAME,
                 frequency: int = 0, checkpoint_at_end: bool = True,
                 results_postprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._policy = ReportPolicy(metrics, filename, frequency, checkpoint_at_end, results_postprocessing_fn)
        self._evals_log: dict[str, Any] = {}
        self._last_epoch: int | None = None  # xgboost counts epochs from 0 again when training continues a model

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Booster:
        """The booster saved in ``checkpoint`` (by this callback, or by the legacy trainer)."""
        def load(path: str) -> Booster:
            booster = Booster()
            booster.load_model(path)
            return booster

        return load_model(checkpoint, filename, load)

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        self._evals_log, self._last_epoch = evals_log, epoch
        save = None
        if self._policy.checkpoint_now(epoch):
            self._policy.last_checkpoint_iteration = epoch
            save = model.save_model
        self._policy.report(self._policy.select(_flatten(evals_log)), save)
        return False  # never stops training

    def after_training(self, model: Any) -> Any:
        if not self._policy.checkpoint_at_end:
            return model
        if self._last_epoch is not None and self._policy.last_checkpoint_iteration == self._last_epoch:
            return model  # the last round was just checkpointed
        self._policy.report(self._policy.select(_flatten(self._evals_log)), model.save_model)
        return model
