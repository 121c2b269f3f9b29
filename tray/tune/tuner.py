"""``Tuner`` (Ray's ``ray.tune.Tuner``): ``Tuner(trainable, param_space=..., tune_config=...,
run_config=...).fit()`` -> ``ResultGrid``; ``Tuner.restore(path, trainable)`` resumes a run."""

from __future__ import annotations

import os
from typing import Any

from .._air import RunConfig
from ._experiment import resolve_trainable, run_experiment
from ._state import can_restore, load_state, load_tuner
from .experiment.trial import Trial
from .result_grid import ResultGrid
from .tune_config import TuneConfig


class Tuner:
    def __init__(self, trainable: Any = None, *, param_space: dict[str, Any] | None = None,
                 tune_config: TuneConfig | None = None, run_config: RunConfig | None = None,
                 _tuner_kwargs: dict[str, Any] | None = None) -> None:
        resolve_trainable(trainable)  # a bad trainable fails here, not in fit()
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise TypeError(f"tune_config must be a TuneConfig, got {type(tune_config).__name__}")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise TypeError(f"run_config must be a RunConfig, got {type(run_config).__name__}")
        self._trainable = trainable
        self._param_space = param_space if param_space is not None else {}
        self._tune_config = tune_config or TuneConfig()
        self._run_config = run_config or RunConfig()
        self._kwargs = _tuner_kwargs or {}
        self._restored: dict[str, Any] | None = None
        self._experiment_path: str | None = None
        self._results: ResultGrid | None = None

    def fit(self) -> ResultGrid:
        """Run every trial; errors of trials are in the ResultGrid (``errors``), not raised."""
        trials, path = run_experiment(self._trainable, self._param_space, self._tune_config, self._run_config,
                                      restored=self._restored, experiment_path=self._experiment_path,
                                      resources_per_trial=self._kwargs.get("resources_per_trial"))
        self._experiment_path = path
        self._restored = None
        self._results = ResultGrid(trials, path, self._tune_config.metric, self._tune_config.mode)
        return self._results

    def get_results(self) -> ResultGrid:
        if self._results is None:
            if self._experiment_path and can_restore(self._experiment_path):
                trials = load_state(self._experiment_path)["trials"]
                return ResultGrid(trials, self._experiment_path, self._tune_config.metric, self._tune_config.mode)
            raise RuntimeError("get_results() before fit(): there are no results yet")
        return self._results

    @classmethod
    def can_restore(cls, path: str | os.PathLike, storage_filesystem: Any = None) -> bool:
        """Does ``path`` hold a Tune run that ``restore`` can resume?"""
        return can_restore(os.fspath(path))

    @classmethod
    def restore(cls, path: str | os.PathLike, trainable: Any, resume_unfinished: bool = True,
                resume_errored: bool = False, restart_errored: bool = False,
                param_space: dict[str, Any] | None = None, storage_filesystem: Any = None,
                _resume_config: Any = None) -> Tuner:
        """A Tuner that, on ``fit()``, goes on with the run at ``path``: finished trials keep their
        results, unfinished ones resume from their latest checkpoint (a killed driver's too)."""
        path = os.path.abspath(os.fspath(path))
        spec = load_tuner(path)
        state = load_state(path)
        for trial in state["trials"]:
            if trial.status == Trial.ERROR and (restart_errored or resume_errored):
                trial.status = Trial.PENDING
                trial.error, trial.error_msg, trial.num_failures = None, None, 0
                for name in ("error.txt", "error.pkl"):
                    try:
                        os.unlink(os.path.join(trial.local_path, name))
                    except OSError:
                        pass
                if restart_errored:
                    trial.checkpoint, trial.checkpoints, trial.last_result = None, [], {}
                    trial.metric_analysis, trial.metric_n_steps = {}, {}
                trial.restore_from = trial.checkpoint
            elif not trial.is_finished():
                if resume_unfinished:
                    trial.restore_from = trial.checkpoint
                    trial.status = Trial.PENDING
                else:
                    trial.status = Trial.TERMINATED
        tuner = cls(trainable, param_space=param_space or spec["param_space"], tune_config=spec["tune_config"],
                    run_config=spec["run_config"],
                    _tuner_kwargs={"resources_per_trial": spec.get("resources_per_trial")})
        tuner._restored = state
        tuner._experiment_path = path
        return tuner
