"""``XGBoostTrainer`` (Ray's ``ray.train.xgboost.XGBoostTrainer``): a DataParallelTrainer whose
workers train one XGBoost model together over XGBoost's collective.

The current form takes ``train_loop_per_worker`` (calling ``xgboost.train`` with
``RayTrainReportCallback``); the legacy form takes ``params=``, ``label_column=``,
``num_boost_round=`` and ``datasets={"train": ds, <eval name>: ds, ...}`` and builds that loop
(what both forms share with LightGBM is in ``tray.train._gbdt``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._gbdt import GBDTTrainer, LegacyLoop
from .config import CollectiveLoop, XGBoostConfig
from .report_callback import RayTrainReportCallback

__all__ = ["XGBoostTrainer"]


@attrs.frozen
class _LegacyLoop(LegacyLoop):
    """Each worker's shards as DMatrix, one ``xgboost.train`` in the collective."""

    def __call__(self) -> None:
        import xgboost

        def dmatrix(name: str) -> Any:
            x, y = self.features_and_label(name)
            return xgboost.DMatrix(x, label=y, **self.data_params.get(name, {}))

        dtrain = dmatrix("train")
        evals = [(dtrain, "train")] + [(dmatrix(n), n) for n in self.eval_names]
        start, rounds = self.resume(RayTrainReportCallback.get_model, lambda model: model.num_boosted_rounds())
        xgboost.train(self.params, dtrain, num_boost_round=max(rounds, 0), evals=evals, xgb_model=start,
                      callbacks=[RayTrainReportCallback(frequency=self.frequency,
                                                        checkpoint_at_end=self.checkpoint_at_end)])


class XGBoostTrainer(GBDTTrainer):
    """Distributed XGBoost: every worker trains on its shard, the trees are built together."""

    legacy_loop = _LegacyLoop
    config_class = XGBoostConfig
    config_keyword = "xgboost_config"
    data_params_keyword = "dmatrix_params"
    data_built_by = "the DMatrix"
    network_loop = CollectiveLoop
    report_callback = RayTrainReportCallback

    def __init__(self, train_loop_per_worker: Callable[..., Any] | None = None, *,
                 xgboost_config: XGBoostConfig | None = None,
                 dmatrix_params: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> None:
        """Ray's arguments: ``train_loop_config``, ``scaling_config``, ``run_config``, ``datasets``,
        ``dataset_config``, ``metadata``, ``resume_from_checkpoint``; the legacy form's ``params``,
        ``label_column``, ``num_boost_round`` and ``dmatrix_params`` (DMatrix arguments by dataset
        name)."""
        super().__init__(train_loop_per_worker, xgboost_config, dmatrix_params, **kwargs)
