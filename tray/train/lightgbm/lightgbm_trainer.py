"""``LightGBMTrainer`` (Ray's ``ray.train.lightgbm.LightGBMTrainer``): a DataParallelTrainer whose
workers train one LightGBM model together over LightGBM's socket network.

The current form takes ``train_loop_per_worker`` (calling ``lightgbm.train`` with
``get_network_params()`` merged into its params and ``RayTrainReportCallback``); the legacy form
takes ``params=``, ``label_column=``, ``num_boost_round=`` and ``datasets={"train": ds, ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from lightgbm import Booster

from ..._air.checkpoint import Checkpoint
from ..._air.config import RunConfig, ScalingConfig
from .._controller import RunSpec
from .._gbdt import cadence, check_legacy_args, shard_frame, split_label, trial_with_params
from .._storage import StorageContext
from ..data_parallel_trainer import DataParallelTrainer
from .config import LightGBMConfig, NetworkLoop, get_network_params
from .report_callback import RayTrainReportCallback

__all__ = ["LightGBMTrainer"]


@attrs.frozen
class _LegacyLoop:
    """The loop the legacy form runs: each worker's shards as lightgbm Datasets, one ``lightgbm.train``."""

    params: dict[str, Any]
    label_column: str
    num_boost_round: int
    eval_names: tuple[str, ...]
    frequency: int
    checkpoint_at_end: bool
    dataset_params: dict[str, dict[str, Any]]

    def __call__(self) -> None:
        import lightgbm

        from ... import train

        def dataset(name: str, reference: Any = None) -> Any:
            x, y = split_label(shard_frame(name), self.label_column)
            return lightgbm.Dataset(x, label=y, reference=reference, **self.dataset_params.get(name, {}))

        network = get_network_params()
        params = dict(self.params)
        if network:
            params.setdefault("tree_learner", "data_parallel")
            params.setdefault("pre_partition", True)
            params.update(network)
        dtrain = dataset("train")
        valid = [dtrain] + [dataset(n, dtrain) for n in self.eval_names]
        start = None
        rounds = self.num_boost_round
        checkpoint = train.get_checkpoint()
        if checkpoint is not None:  # resume: the iterations still to do
            start = RayTrainReportCallback.get_model(checkpoint)
            rounds -= start.current_iteration()
        if rounds <= 0:
            return
        lightgbm.train(params, dtrain, num_boost_round=rounds, valid_sets=valid,
                       valid_names=["train", *self.eval_names], init_model=start,
                       callbacks=[RayTrainReportCallback(frequency=self.frequency,
                                                checkpoint_at_end=self.checkpoint_at_end)])


class LightGBMTrainer(DataParallelTrainer):
    """Distributed LightGBM (data-parallel tree learner): every worker trains on its shard."""

    def __init__(self, train_loop_per_worker: Callable[..., Any] | None = None, *,
                 train_loop_config: dict[str, Any] | None = None, lightgbm_config: LightGBMConfig | None = None,
                 scaling_config: ScalingConfig | None = None, run_config: RunConfig | None = None,
                 datasets: dict[str, Any] | None = None, dataset_config: Any = None,
                 metadata: dict[str, Any] | None = None, resume_from_checkpoint: Checkpoint | None = None,
                 label_column: str | None = None, params: dict[str, Any] | None = None,
                 num_boost_round: int | None = None, dataset_params: dict[str, dict[str, Any]] | None = None
                 ) -> None:
        if lightgbm_config is not None and not isinstance(lightgbm_config, LightGBMConfig):
            raise TypeError(f"lightgbm_config must be a LightGBMConfig, got {type(lightgbm_config).__name__}")
        if check_legacy_args("LightGBMTrainer", train_loop_per_worker, params, label_column, num_boost_round,
                             datasets):
            assert datasets is not None and params is not None and label_column is not None
            train_loop_per_worker = _LegacyLoop(dict(params), label_column, num_boost_round or 10,
                                                tuple(n for n in datasets if n != "train"), *cadence(run_config),
                                                dict(dataset_params or {}))
        elif dataset_params is not None:
            raise ValueError("LightGBMTrainer(dataset_params=...) belongs to the legacy form (params=, label_column=): "
                             "build the lightgbm.Dataset in train_loop_per_worker instead")
        super().__init__(train_loop_per_worker, train_loop_config=train_loop_config,  # type: ignore[arg-type]
                         backend_config=lightgbm_config or LightGBMConfig(), scaling_config=scaling_config,
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
        return attrs.evolve(spec, fn=NetworkLoop(spec.fn))
