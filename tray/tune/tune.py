"""``tune.run`` (Ray's older entry point) -> ``ExperimentAnalysis``."""

from __future__ import annotations

import os
from typing import Any

from .._air import CheckpointConfig, FailureConfig, RunConfig
from ._experiment import resolve_trainable, run_experiment
from ._state import can_restore, load_state
from .analysis import ExperimentAnalysis
from .error import TuneError
from .experiment.trial import Trial
from .tune_config import TuneConfig


def run(run_or_experiment: Any, *, name: str | None = None, metric: str | None = None, mode: str | None = None,
        stop: Any = None, time_budget_s: float | None = None, config: dict[str, Any] | None = None,
        resources_per_trial: Any = None, num_samples: int = 1, storage_path: str | None = None,
        search_alg: Any = None, scheduler: Any = None, checkpoint_config: CheckpointConfig | None = None,
        verbose: int = 3, progress_reporter: Any = None, log_to_file: Any = False, trial_name_creator: Any = None,
        trial_dirname_creator: Any = None, keep_checkpoints_num: int | None = None,
        checkpoint_score_attr: str | None = None, checkpoint_freq: int = 0, checkpoint_at_end: bool = False,
        max_failures: int = 0, fail_fast: bool | str = False, restore: str | None = None, resume: Any = None,
        reuse_actors: bool | None = None, raise_on_failed_trial: bool = True, callbacks: list[Any] | None = None,
        max_concurrent_trials: int | None = None, local_dir: str | None = None, **kwargs: Any) -> ExperimentAnalysis:
    """Run trials of ``run_or_experiment`` over ``config``; raises TuneError if any trial failed
    (unless ``raise_on_failed_trial=False``)."""
    if kwargs:
        raise TypeError(f"tune.run() got unexpected arguments: {', '.join(sorted(kwargs))}")
    resolve_trainable(run_or_experiment)
    if checkpoint_config is None:
        order = "max"
        attr = checkpoint_score_attr
        if attr and attr.startswith("min-"):
            attr, order = attr[4:], "min"
        checkpoint_config = CheckpointConfig(num_to_keep=keep_checkpoints_num, checkpoint_score_attribute=attr,
                                             checkpoint_score_order=order, checkpoint_frequency=checkpoint_freq,
                                             checkpoint_at_end=checkpoint_at_end)
    run_config = RunConfig(name=name, storage_path=storage_path or local_dir, stop=stop, callbacks=callbacks,
                           checkpoint_config=checkpoint_config, verbose=verbose, progress_reporter=progress_reporter,
                           failure_config=FailureConfig(max_failures=max_failures, fail_fast=fail_fast),
                           log_to_file=log_to_file)
    tune_config = TuneConfig(metric=metric, mode=mode, search_alg=search_alg, scheduler=scheduler,
                             num_samples=num_samples, max_concurrent_trials=max_concurrent_trials,
                             time_budget_s=time_budget_s, reuse_actors=reuse_actors,
                             trial_name_creator=trial_name_creator, trial_dirname_creator=trial_dirname_creator)
    restored = None
    experiment_path = None
    target = restore
    if target is None and resume and name:
        target = os.path.join(os.path.expanduser(run_config.resolved_storage_path()), name)
    if target is not None and can_restore(target):
        restored = load_state(target)
        for trial in restored["trials"]:
            if not trial.is_finished() or (trial.status == Trial.ERROR and resume in ("ERRORED_ONLY", "AUTO+ERRORED")):
                trial.restore_from = trial.checkpoint
                trial.status = Trial.PENDING
        experiment_path = os.path.abspath(target)
    elif restore is not None:
        raise ValueError(f"tune.run(restore={restore!r}): no Tune run to restore there")
    trials, path = run_experiment(run_or_experiment, config or {}, tune_config, run_config,
                                  resources_per_trial=resources_per_trial, default_verbose=verbose,
                                  restored=restored, experiment_path=experiment_path)
    failed = [t for t in trials if t.status == Trial.ERROR]
    if failed and raise_on_failed_trial:
        raise TuneError(f"Trials did not complete: {failed}")
    return ExperimentAnalysis(path, trials=trials, default_metric=metric, default_mode=mode)


def run_experiments(experiments: dict[str, dict[str, Any]], **kwargs: Any) -> list[Trial]:
    """Each ``{name: {"run": trainable, "config": ..., ...}}`` through ``run``."""
    out: list[Trial] = []
    for exp_name, spec in experiments.items():
        spec = dict(spec)
        trainable = spec.pop("run")
        out += run(trainable, name=exp_name, **{**kwargs, **spec}).trials
    return out
