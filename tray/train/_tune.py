"""A trainer as a Tune trial: ``Tuner(trainer, param_space={"train_loop_config": {...}})``.

A trainer is a Tune function trainable (callable with the trial's config) whose trial asks Tune
for the trainer's own bundle (``_tray_resources``). Inside the trial's actor, the trainer's
controller starts its worker group in a placement group of its own (so trials whose groups do
not fit yet wait for the cluster) and turns each report round into a Tune report; the run's checkpoints
go through Tune (into the trial's directory, kept by the Tuner's ``CheckpointConfig``), while
Train keeps its latest one in ``<trial_dir>/.train/`` to restart its group from.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from .._air import session as air_session
from .._air.config import CheckpointConfig, RunConfig
from ._storage import StorageContext, join

__all__ = ["TRIAL_KEYS", "run_as_trial"]

TRIAL_KEYS = ("train_loop_config", "scaling_config", "datasets", "metadata", "resume_from_checkpoint")


def merged_trainer(trainer: Any, config: dict[str, Any]) -> Any:
    """A copy of ``trainer`` with the trial's config applied (Ray merges ``train_loop_config``)."""
    out = copy.copy(trainer)
    for key, value in (config or {}).items():
        if key not in TRIAL_KEYS:
            raise ValueError(f"param_space key {key!r} is not a {type(trainer).__name__} argument: "
                             f"use one of {', '.join(TRIAL_KEYS)} (hyperparameters go in 'train_loop_config')")
        if key == "train_loop_config":
            out._train_loop_config = {**(trainer._train_loop_config or {}), **(value or {})}
        else:
            setattr(out, key, value)
    out._validate()
    return out


def run_as_trial(trainer: Any, config: dict[str, Any]) -> None:
    """Body of the trial: run the trainer's controller here, reporting each round to Tune."""
    from ._controller import TrainController

    trainer = merged_trainer(trainer, config)
    ctx = air_session.get_context()
    trial_dir = ctx.get_trial_dir() or os.getcwd()
    storage = StorageContext(join(trial_dir, ".train"), ctx.get_experiment_name() or "train",
                             ctx.get_trial_name() or None)
    run_config = RunConfig(name=storage.experiment_name, failure_config=trainer.run_config.failure_config,
                           checkpoint_config=CheckpointConfig(num_to_keep=1),
                           callbacks=trainer.run_config.callbacks)
    spec = trainer._spec(storage)
    spec.run_config = run_config
    spec.trial_name, spec.trial_id = ctx.get_trial_name(), ctx.get_trial_id()
    resume = air_session.get_checkpoint()
    if resume is not None:
        spec.resume_from = resume

    def to_tune(metrics: dict[str, Any], checkpoint: Any) -> None:
        air_session.report(metrics, checkpoint=checkpoint)

    TrainController(spec, on_report=to_tune).run()
