"""``LightGBMTrainer`` (Ray's ``ray.train.lightgbm.LightGBMTrainer``): a DataParallelTrainer whose
workers train one LightGBM model together over LightGBM's socket network.

The current form takes ``train_loop_per_worker`` (calling ``lightgbm.train`` with
``get_network_params()`` merged into its params and ``RayTrainReportCallback``); the legacy form
takes ``params=``, ``label_column=``, ``num_boost_round=`` and ``datasets={"train": ds, ...}``
(what both forms share with XGBoost is in ``tray.train._gbdt``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._gbdt import GBDTTrainer, LegacyLoop
from .config import LightGBMConfig, NetworkLoop, get_network_params
from .report_callback import RayTrainReportCallback

__all__ = ["LightGBMTrainer"]


@attrs.frozen
class _LegacyLoop(LegacyLoop):
    """Each worker's shards as lightgbm Datasets, one ``lightgbm.train`` over the network."""

    def __call__(self) -> None:
        import lightgbm

        def dataset(name: str, reference: Any = None) -> Any:
            x, y = self.features_and_label(name)
            return lightgbm.Dataset(x, label=y, reference=reference, **self.data_params.get(name, {}))

        network = get_network_params()
        params = dict(self.params)
        if network:
            params.setdefault("tree_learner", "data_parallel")
            params.setdefault("pre_partition", True)
            params.update(network)
        dtrain = dataset("train")
        valid = [dtrain] + [dataset(n, dtrain) for n in self.eval_names]
        start, rounds = self.resume(RayTrainReportCallback.get_model, lambda model: model.current_iteration())
        if rounds <= 0:
            return
        lightgbm.train(params, dtrain, num_boost_round=rounds, valid_sets=valid,
                       valid_names=["train", *self.eval_names], init_model=start,
                       callbacks=[RayTrainReportCallback(frequency=self.frequency,
                                                         checkpoint_at_end=self.checkpoint_at_end)])


class LightGBMTrainer(GBDTTrainer):
    """Distributed LightGBM (data-parallel tree learner): every worker trains on its shard."""

    legacy_loop = _LegacyLoop
    config_class = LightGBMConfig
    config_keyword = "lightgbm_config"
    data_params_keyword = "dataset_params"
    data_built_by = "the lightgbm.Dataset"
    network_loop = NetworkLoop
    report_callback = RayTrainReportCallback

    def __init__(self, train_loop_per_worker: Callable[..., Any] | None = None, *,
                 lightgbm_config: LightGBMConfig | None = None,
                 dataset_params: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> None:
        """Ray's arguments: ``train_loop_config``, ``scaling_config``, ``run_config``, ``datasets``,
        ``dataset_config``, ``metadata``, ``resume_from_checkpoint``; the legacy form's ``params``,
        ``label_column``, ``num_boost_round`` and ``dataset_params`` (lightgbm.Dataset arguments by
        dataset name)."""
        super().__init__(train_loop_per_worker, lightgbm_config, dataset_params, **kwargs)
