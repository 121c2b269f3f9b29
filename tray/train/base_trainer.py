"""``BaseTrainer`` (Ray's ``ray.train.base_trainer``): what every trainer has — configs, a
``fit()`` that returns a ``Result``, ``restore``/``can_restore`` from a run's directory, and
``as_trainable()`` so ``Tuner(trainer, param_space={"train_loop_config": ...})`` runs it as
a Tune trial."""

from __future__ import annotations

import copy
import os
from datetime import datetime
from typing import Any

from .._air.checkpoint import Checkpoint
from .._air.config import RunConfig, ScalingConfig
from .._air.result import Result
from ._errors import TrainingFailedError

__all__ = ["BaseTrainer", "TrainingFailedError"]

TRAINER_FILE = "trainer.pkl"


class BaseTrainer:
    """Holds the configs every trainer shares and checks them where they are written."""

    _scaling_config_allowed_keys: tuple[str, ...] = ()

    def __init__(self, *, scaling_config: ScalingConfig | None = None, run_config: RunConfig | None = None,
                 datasets: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                 resume_from_checkpoint: Checkpoint | None = None) -> None:
        self.scaling_config = scaling_config if scaling_config is not None else ScalingConfig()
        self.run_config = copy.copy(run_config) if run_config is not None else RunConfig()
        self.datasets = dict(datasets or {})
        self.metadata = dict(metadata or {})
        self.resume_from_checkpoint = resume_from_checkpoint
        self._restored_path: str | None = None
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.scaling_config, ScalingConfig):
            raise TypeError("scaling_config must be a tray.train.ScalingConfig, "
                            f"got {type(self.scaling_config).__name__}")
        if not isinstance(self.run_config, RunConfig):
            raise TypeError(f"run_config must be a tray.train.RunConfig, got {type(self.run_config).__name__}")
        if not isinstance(self.datasets, dict) or not all(isinstance(k, str) for k in self.datasets):
            raise TypeError("datasets must be a dict of name -> tray.data.Dataset")
        if self.resume_from_checkpoint is not None and not isinstance(self.resume_from_checkpoint, Checkpoint):
            raise TypeError("resume_from_checkpoint must be a tray.train.Checkpoint, "
                            f"got {type(self.resume_from_checkpoint).__name__}")
        for cb in self.run_config.callbacks or []:
            if not callable(getattr(cb, "after_report", None)):
                raise TypeError(f"RunConfig(callbacks=...) for a trainer takes tray.train.UserCallback objects "
                                f"(with after_report/after_exception), got {type(cb).__name__}")

    def _default_name(self) -> str:
        return f"{type(self).__name__}_{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}"

    def fit(self) -> Result:
        raise NotImplementedError

    # ---- restore

    @classmethod
    def can_restore(cls, path: str | os.PathLike, storage_filesystem: Any = None) -> bool:
        """Whether ``path`` holds a run this trainer class can resume."""
        from ._storage import StorageContext

        st = StorageContext(os.fspath(path), os.path.basename(os.fspath(path).rstrip("/")))
        return st.exists(TRAINER_FILE)

    @classmethod
    def restore(cls, path: str | os.PathLike, **kwargs: Any) -> BaseTrainer:
        """The trainer of the interrupted run at ``path``; its ``fit()`` resumes from that run's latest
        checkpoint, in the same directory. Pass again what cannot be saved (``datasets=``) or what
        should change (``train_loop_per_worker=``, ``train_loop_config=``, ``scaling_config=``...)."""
        import cloudpickle

        from ._storage import StorageContext

        path = os.fspath(path)
        st = StorageContext(path, os.path.basename(path.rstrip("/")))
        if not st.exists(TRAINER_FILE):
            raise ValueError(f"{path!r} holds no trainer run to restore (no {TRAINER_FILE}): "
                             f"check with {cls.__name__}.can_restore(path)")
        trainer = cloudpickle.loads(st.read_bytes(TRAINER_FILE))
        if not isinstance(trainer, cls):
            raise ValueError(f"{path!r} was run by a {type(trainer).__name__}, not a {cls.__name__}")  # noqa: TRY004
        for key, value in kwargs.items():
            if value is None:
                continue
            attr = {"train_loop_per_worker": "_train_loop_per_worker", "train_loop_config": "_train_loop_config"}.get(
                key, key)
            if not hasattr(trainer, attr):
                raise TypeError(f"{cls.__name__}.restore() got an unexpected argument {key!r}")
            setattr(trainer, attr, value)
        trainer._restored_path = st.run_path
        trainer._validate()
        return trainer

    # ---- as a Tune trial: a trainer is a function trainable asking for its workers' resources

    def as_trainable(self) -> BaseTrainer:
        """What Tune runs (Ray's name): the trainer itself, callable with a trial's config."""
        return self

    @property
    def _tray_resources(self) -> Any:
        """The trial's resource request Tune reads: the trainer's own bundle. The workers' bundles are
        reserved by the trainer's own placement group once the trial runs (a trial whose group cannot
        be placed yet waits for the running ones to end)."""
        from .._air.resources import PlacementGroupFactory

        return PlacementGroupFactory([self.scaling_config._trainer_resources_not_none])

    def __call__(self, config: dict[str, Any]) -> None:
        """Run as a Tune trial with the trial's ``config`` (``{"train_loop_config": {...}}`` merged in)."""
        from ._tune import run_as_trial

        run_as_trial(self, config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} scaling_config={self.scaling_config!r} run_config={self.run_config!r}>"
