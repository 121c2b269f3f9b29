"""What the gradient-boosting trainers (XGBoost, LightGBM) share: the report callbacks' choice of
metrics and checkpoint cadence, and the legacy ``params=``/``label_column=`` form's data loading.

Kept framework-free (no xgboost or lightgbm import) so each trainer's package imports only its own
library.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from .._air.checkpoint import Checkpoint

__all__ = ["ReportPolicy", "cadence", "check_legacy_args", "trial_with_params", "shard_frame", "split_label"]


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

    import attrs

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
