"""``RayTrainReportCallback`` for LightGBM (Ray's ``ray.train.lightgbm.RayTrainReportCallback``):
a LightGBM callback that reports each iteration's evaluation metrics with ``train.report`` and
checkpoints the booster as ``model.txt`` (every ``frequency`` iterations and at the end); rank 0
writes the checkpoint, every rank reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightgbm import Booster

from ..._air.checkpoint import Checkpoint
from .._gbdt import ReportPolicy, load_model

__all__ = ["RayTrainReportCallback"]


def _flatten(results: list[tuple[Any, ...]] | None) -> dict[str, Any]:
    """``(data, metric, value, bigger_better[, stdv])`` rows (``lgb.cv``'s data is "cv_agg") as
    ``{"<data>-<metric>": value}``."""
    return {f"{row[0]}-{row[1]}": row[2] for row in results or []}


class RayTrainReportCallback:
    """Pass to ``lightgbm.train(..., callbacks=[RayTrainReportCallback()])`` inside the training loop.

    ``metrics``: None reports every ``"<valid name>-<metric>"``; a name or list picks some; a dict
    renames (report name -> metric). ``frequency``: checkpoint every that many iterations (0: never
    during training); ``checkpoint_at_end``: checkpoint after the last iteration."""

    CHECKPOINT_NAME = "model.txt"
    order = 30  # after LightGBM's own record/log callbacks (order 10-20), as Ray's callback runs

    def __init__(self, metrics: str | list[str] | dict[str, str] | None = None, filename: str = CHECKPOINT_NAME,
                 frequency: int = 0, checkpoint_at_end: bool = True,
                 results_postprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._policy = ReportPolicy(metrics, filename, frequency, checkpoint_at_end, results_postprocessing_fn)

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Booster:
        """The booster saved in ``checkpoint`` (by this callback, or by the legacy trainer)."""
        return load_model(checkpoint, filename, lambda path: Booster(model_file=path))

    def __call__(self, env: Any) -> None:
        last = env.iteration == env.end_iteration - 1
        save = None
        if self._policy.checkpoint_now(env.iteration) or (last and self._policy.checkpoint_at_end):
            save = env.model.save_model
        self._policy.report(self._policy.select(_flatten(env.evaluation_result_list)), save)
