"""What the gradient-boosting trainers (XGBoost, LightGBM) share: the report callbacks' choice of
metrics and checkpoint cadence, and the legacy ``params=``/``label_column=`` form: its checks, its
loop's fields, data loading and resume, and the trainer base class (:class:`GBDTTrainer`) that
builds that loop, checks the backend config, tunes ``params`` as a Tune trial and wraps the loop in
the framework's network.

Kept framework-free (no xgboost or lightgbm import) so each trainer's package imports only its own
library.
"""

from __future__ import annotations

import abc
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import attrs

from .._air.checkpoint import Checkpoint
from .._air.config import RunConfig, ScalingConfig
from ._controller import RunSpec
from ._storage import StorageContext
from .backend import BackendConfig
from .data_parallel_trainer import DataParallelTrainer

__all__ = ["GBDTTrainer", "LegacyLoop", "ReportPolicy", "cadence", "check_legacy_args", "load_model",
           "shard_frame", "split_label", "trial_with_params"]


class ReportPolicy:
    """Which metrics a report callback sends and when it checkpoints (Ray's arguments)."""

    def __init__(self, metrics: str | list[str] | dict[str, str] | None, filename: str, frequency: int,
                 checkpoint_at_end: bool,
                 results_postprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]] | None) -> None:
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, (list, dict)):
            raise TypeError(f"metrics must be a metric name, a list of names or a dict report-name -> metric name, "
                            f"got {type(metrics).__name__}")
        if not isinstance(frequency, int) or frequency < 0:
            raise ValueError(f"frequency must be an int >= 0 (0: no checkpoint during training), got {frequency!r}")
        if not filename or os.sep in filename:
            raise ValueError(f"filename must be a plain file name, got {filename!r}")
        if results_postprocessing_fn is not None and not callable(results_postprocessing_fn):
            raise TypeError("results_postprocessing_fn must be a function of the metrics dict")
        self.metrics = metrics
        self.filename = filename
        self.frequency = frequency
        self.checkpoint_at_end = checkpoint_at_end
        self.postprocess = results_postprocessing_fn
        self.last_checkpoint_iteration: int | None = None

    def select(self, flat: dict[str, Any]) -> dict[str, Any]:
        """The metrics to report out of every ``"<data>-<metric>"`` value of this round."""
        if self.metrics is None:
            out = dict(flat)
        elif isinstance(self.metrics, dict):
            out = {name: self._pick(flat, key) for name, key in self.metrics.items()}
        else:
            out = {key: self._pick(flat, key) for key in self.metrics}
        return self.postprocess(out) if self.postprocess is not None else out

    @staticmethod
    def _pick(flat: dict[str, Any], key: str) -> Any:
        if key not in flat:
            raise KeyError(f"metric {key!r} is not among this round's evaluation results {sorted(flat)}: name it "
                           "as '<eval set name>-<metric>', e.g. 'train-logloss'")
        return flat[key]

    def checkpoint_now(self, iteration: int) -> bool:
        return self.frequency > 0 and (iteration + 1) % self.frequency == 0

    def report(self, metrics: dict[str, Any], save: Callable[[str], None] | None) -> None:
        """``train.report`` from this rank; rank 0 (or the only process) attaches the model that
        ``save(path)`` writes."""
        from .. import train

        with _checkpoint(save, self.filename) as checkpoint:
            train.report(metrics, checkpoint=checkpoint)


@contextlib.contextmanager
def _checkpoint(save: Callable[[str], None] | None, filename: str) -> Iterator[Checkpoint | None]:
    from .. import train

    if save is None or train.get_context().get_world_rank() not in (0, None):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="tray-gbdt-") as tmp:
        save(os.path.join(tmp, filename))
        yield Checkpoint.from_directory(tmp)


def load_model(checkpoint: Checkpoint, filename: str, load: Callable[[str], Any]) -> Any:
    """``load(path)`` of the model file ``filename`` in ``checkpoint`` (saved by a report callback
    or the legacy loop); FileNotFoundError naming what the checkpoint holds instead."""
    with checkpoint.as_directory() as d:
        path = os.path.join(d, filename)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{checkpoint!r} holds no {filename!r}: {sorted(os.listdir(d))}")
        return load(path)


# ---- the legacy form: XGBoostTrainer(params=..., label_column=..., datasets={"train": ds, ...})


def check_legacy_args(trainer: str, loop: Any, params: Any, label_column: Any, num_boost_round: Any,
                      datasets: dict[str, Any] | None) -> bool:
    """True for the legacy form; raises naming what is missing or mixed up."""
    legacy = params is not None or label_column is not None or num_boost_round is not None
    if loop is not None and legacy:
        raise ValueError(f"{trainer}: pass either train_loop_per_worker (the current form) or params=/"
                         "label_column=/num_boost_round= (the legacy form), not both")
    if loop is None and not legacy:
        raise ValueError(f"{trainer} needs train_loop_per_worker (a function calling the library's train "
                         "with RayTrainReportCallback) or the legacy params=, label_column= and datasets=")
    if loop is not None:
        return False
    if not isinstance(params, dict):
        raise TypeError(f"{trainer}(params=...) must be a dict of the library's training parameters")
    if not isinstance(label_column, str):
        raise TypeError(f"{trainer}(label_column=...) must name the label column, got {label_column!r}")
    if num_boost_round is not None and (not isinstance(num_boost_round, int) or num_boost_round < 1):
        raise ValueError(f"{trainer}(num_boost_round=...) must be an int >= 1, got {num_boost_round!r}")
    if not datasets or "train" not in datasets:
        raise ValueError(f"{trainer} in the legacy form needs datasets={{'train': ds, ...}}")
    return True


def trial_with_params(trainer: Any, legacy_loop: type[Any], config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A Tune trial's trainer and the rest of its config: as Ray does for the legacy form,
    ``param_space={"params": {...}}`` is merged into the trainer's ``params``."""
    import copy

    config = dict(config or {})
    if "params" not in config:
        return trainer, config
    params = config.pop("params")
    loop: Any = trainer._train_loop_per_worker
    if not isinstance(loop, legacy_loop):
        raise ValueError(f"param_space key 'params' is for a {type(trainer).__name__} made with params= and "
                         "label_column= (the legacy form); with train_loop_per_worker use 'train_loop_config'")
    if not isinstance(params, dict):
        raise TypeError(f"param_space 'params' must be a dict of training parameters, got {type(params).__name__}")
    out = copy.copy(trainer)
    out._train_loop_per_worker = attrs.evolve(loop, params={**loop.params, **params})
    return out, config


@attrs.frozen
class LegacyLoop(abc.ABC):
    """The loop the legacy form runs (what the workers are sent): each framework's subclass builds
    its data from the worker's shards and calls its library's ``train`` once."""

    params: dict[str, Any]
    label_column: str
    num_boost_round: int
    eval_names: tuple[str, ...]
    frequency: int
    checkpoint_at_end: bool
    data_params: dict[str, dict[str, Any]]  # per dataset name: the library's dataset arguments

    def features_and_label(self, name: str) -> tuple[Any, Any]:
        """This worker's rows of ``datasets[name]``: (features, label)."""
        return split_label(shard_frame(name), self.label_column)

    def resume(self, get_model: Callable[[Checkpoint], Any], rounds_in: Callable[[Any], int]) -> tuple[Any, int]:
        """``(model to start from or None, rounds still to do)``: after a restart, the run's last
        checkpoint's model and the rounds it lacks (``rounds_in(model)``: how many it has)."""
        from .. import train

        checkpoint = train.get_checkpoint()
        if checkpoint is None:
            return None, self.num_boost_round
        start = get_model(checkpoint)
        return start, self.num_boost_round - rounds_in(start)

    @abc.abstractmethod
    def __call__(self) -> None:
        """Build the data, train (from :meth:`resume`'s model), report through the callback."""


class GBDTTrainer(DataParallelTrainer):
    """A DataParallelTrainer whose workers train one gradient-boosted model together; a subclass
    per library names its pieces and keeps Ray's keyword names for them."""

    legacy_loop: ClassVar[type[LegacyLoop]]  # the legacy form's loop
    config_class: ClassVar[type[BackendConfig]]  # the backend config (the library's network set-up)
    config_keyword: ClassVar[str]  # Ray's name of the backend config argument
    data_params_keyword: ClassVar[str]  # Ray's name of the legacy form's per-dataset arguments
    data_built_by: ClassVar[str]  # what the current form builds instead, in words
    network_loop: ClassVar[type[Any]]  # made of a loop: that loop run inside the library's network
    report_callback: ClassVar[Any]  # its get_model reads a checkpoint

    def __init__(self, train_loop_per_worker: Callable[..., Any] | None, backend_config: BackendConfig | None,
                 data_params: dict[str, dict[str, Any]] | None, *, train_loop_config: dict[str, Any] | None = None,
                 scaling_config: ScalingConfig | None = None, run_config: RunConfig | None = None,
                 datasets: dict[str, Any] | None = None, dataset_config: Any = None,
                 metadata: dict[str, Any] | None = None, resume_from_checkpoint: Checkpoint | None = None,
                 label_column: str | None = None, params: dict[str, Any] | None = None,
                 num_boost_round: int | None = None) -> None:
        name, config_class = type(self).__name__, self.config_class
        if backend_config is not None and not isinstance(backend_config, config_class):
            raise TypeError(f"{self.config_keyword} must be of type {config_class.__name__}, "
                            f"got {type(backend_config).__name__}")
        if check_legacy_args(name, train_loop_per_worker, params, label_column, num_boost_round, datasets):
            assert datasets is not None and params is not None and label_column is not None
            train_loop_per_worker = self.legacy_loop(dict(params), label_column, num_boost_round or 10,
                                                     tuple(n for n in datasets if n != "train"), *cadence(run_config),
                                                     dict(data_params or {}))
        elif data_params is not None:
            raise ValueError(f"{name}({self.data_params_keyword}=...) belongs to the legacy form (params=, "
                             f"label_column=): build {self.data_built_by} in train_loop_per_worker instead")
        super().__init__(train_loop_per_worker, train_loop_config=train_loop_config,  # type: ignore[arg-type]
                         backend_config=backend_config or config_class(), scaling_config=scaling_config,
                         run_config=run_config, datasets=datasets, dataset_config=dataset_config,
                         metadata=metadata, resume_from_checkpoint=resume_from_checkpoint)

    @classmethod
    def get_model(cls, checkpoint: Checkpoint) -> Any:
        """The model (the library's ``Booster``) a run of this trainer saved in ``checkpoint``."""
        return cls.report_callback.get_model(checkpoint)

    def __call__(self, config: dict[str, Any]) -> None:
        """As a Tune trial; in the legacy form ``param_space={"params": {...}}`` tunes ``params``."""
        trainer, rest = trial_with_params(self, self.legacy_loop, config)
        DataParallelTrainer.__call__(trainer, rest)

    def _spec(self, storage: StorageContext) -> RunSpec:
        spec = super()._spec(storage)
        return attrs.evolve(spec, fn=type(self).network_loop(spec.fn))


def cadence(run_config: Any) -> tuple[int, bool]:
    """The legacy loop's checkpoint cadence from ``RunConfig(checkpoint_config=...)``, as Ray reads it:
    every ``checkpoint_frequency`` rounds, and at the end unless ``checkpoint_at_end=False``."""
    cc = getattr(run_config, "checkpoint_config", None)
    if cc is None:
        return 0, True
    return cc.checkpoint_frequency, cc.checkpoint_at_end is not False


def shard_frame(name: str) -> Any:
    """This worker's rows of ``datasets[name]`` as one pandas DataFrame."""
    from .. import train

    shard = train.get_dataset_shard(name)
    if shard is None:
        raise ValueError(f"no dataset named {name!r} was given to the trainer")
    return shard.materialize().to_pandas()


def split_label(frame: Any, label_column: str) -> tuple[Any, Any]:
    if label_column not in frame.columns:
        raise ValueError(f"label_column {label_column!r} is not a column of the dataset {list(frame.columns)}")
    return frame.drop(columns=[label_column]), frame[label_column]
