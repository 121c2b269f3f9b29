"""``XGBoostTrainer`` (Ray's ``ray.train.xgboost.XGBoostTrainer``): a DataParallelTrainer whose
workers train one XGBoost model together over XGBoost's collective.

The current form takes ``train_loop_per_worker`` (calling ``xgboost.train`` with
``RayTrainReportCallback``); the legacy form takes ``params=``, ``label_column=``,
``num_boost_round=`` and ``datasets={"train": ds, <eval name>: ds, ...}`` and builds that loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from xgboost import Booster

from ..._air.checkpoint import Checkpoint
from ..._air.config import RunConfig, ScalingConfig
from .._controller import RunSpec
from .._gbdt import cadence, check_legacy_args, shard_frame, split_label, trial_with_params
from .._storage import StorageContext
from ..data_parallel_trainer import DataParallelTrainer
from .config import CollectiveLoop, XGBoostConfig
from .report_callback import RayTrainReportCallback

__all__ = ["XGBoostTrainer"]


@attrs.frozen
class _LegacyLoop:
    """The loop the legacy form runs: each worker's shards as DMatrix, one ``xgboost.train``."""

    params: dict[str, Any]
    label_column: str
    num_boost_round: int
    eval_names: tuple[str, ...]
    frequency: int
    checkpoint_at_end: bool
    dmatrix_params: dict[str, dict[str, Any]]

    def __call__(self) -> None:
        import xgboost

        from ... import train

        def dmatrix(name: str) -> Any:
            x, y = split_label(shard_frame(name), self.label_column)
            return xgboost.DMatrix(x, label=y, **self.dmatrix_params.get(name, {}))

        dtrain = dmatrix("train")
        evals = [(dtrain, "train")] + [(dmatrix(n), n) for n in self.eval_names]
        start = None
        rounds = self.num_boost_round
        checkpoint = train.get_checkpoint()
        if checkpoint is not None:  # resume: the rounds still to do
            start = RayTrainReportCallback.get_model(checkpoint)
            rounds -= start.num_boosted_rounds()
        xgboost.train(self.params, dtrain, num_boost_round=max(rounds, 0), evals=evals, xgb_model=start,
                      callbacks=[RayTrainReportCallback(frequency=self.frequency,
                                                checkpoint_at_end=self.checkpoint_at_end)])


class XGBoostTrainer(DataParallelTrainer):
    """Distributed XGBoost: every worker trains on its shard, the trees are built together."""

    def __init__(self, train_loop_per_worker: Callable[..., Any] | None = None, *,
                 train_loop_config: dict[str, Any] | None = None, xgboost_config: XGBoostConfig | None = None,
                 scaling_config: ScalingConfig | None = None, run_config: RunConfig | None = None,
                 datasets: dict[str, Any] | None = None, dataset_config: Any = None,
                 metadata: dict[str, Any] | None = None, resume_from_checkpoint: Checkpoint | None = None,
                 label_column: str | None = None, params: dict[str, Any] | None = None,
                 num_boost_round: int | None = None, dmatrix_params: dict[str, dict[str, Any]] | None = None
                 ) -> None:
        if xgboost_config is not None and not isinstance(xgboost_config, XGBoostConfig):
            raise TypeError(f"xgboost_config must be an XGBoostConfig, got {type(xgboost_config).__name__}")
        if check_legacy_args("XGBoostTrainer", train_loop_per_worker, params, label_column, num_boost_round,
                             datasets):
            assert datasets is not None and params is not None and label_column is not None
            train_loop_per_worker = _LegacyLoop(dict(params), label_column, num_boost_round or 10,
                                                tuple(n for n in datasets if n != "train"), *cadence(run_config),
                                                dict(dmatrix_params or {}))
        elif dmatrix_params is not None:
            raise ValueError("XGBoostTrainer(dmatrix_params=...) belongs to the legacy form (params=, label_column=): "
                             "build the DMatrix in train_loop_per_worker instead")
        super().__init__(train_loop_per_worker, train_loop_config=train_loop_config,  # type: ignore[arg-type]
                         backend_config=xgboost_config or XGBoostConfig(), scaling_config=scaling_config,
                         run_config=run_config, datasets=datasets, dataset_config=dataset_config,
                         metadata=metadata, resume_from_checkpoint=resume_from_checkpoint)

    @classmethod
    def get_model(cls, checkpoint: Checkpoint) -> Booster:
        """The booster a run of this trainer saved in ``checkpoint``."""
        return RayTrainReportCallback.get_model(checkpoint)

    def __call__(self, config: dict[str, Any]) -> None:
        """As a Tune trial; in the legacy form ``param_space={"params": {...}}`` tunes ``params``."""
        trainer, rest = trial_with_params(self, _LegacyLoop, config)
        DataParallelTrainer.__call__(trainer, rest)

    def _spec(self, storage: StorageContext) -> RunSpec:
        spec = super()._spec(storage)
        return attrs.evolve(spec, fn=CollectiveLoop(spec.fn))
