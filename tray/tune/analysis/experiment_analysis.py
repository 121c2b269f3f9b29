"""``ExperimentAnalysis`` (Ray's ``ray.tune.ExperimentAnalysis``): what ``tune.run`` returns."""

from __future__ import annotations

import os
from typing import Any

from ..._air import Checkpoint
from ..._air.result import flatten, read_result_json, rows_to_dataframe
from ..experiment.trial import Trial
from ..result_grid import best_trial
from ..schedulers.trial_scheduler import check_mode


class ExperimentAnalysis:
    def __init__(self, experiment_checkpoint_path: str, trials: list[Trial] | None = None,
                 default_metric: str | None = None, default_mode: str | None = None) -> None:
        check_mode(default_mode)
        self.experiment_path = experiment_checkpoint_path
        if trials is None:
            from .._state import load_trials

            trials = load_trials(experiment_checkpoint_path)
        self.trials = trials
        self.default_metric, self.default_mode = default_metric, default_mode

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric = metric or self.default_metric
        if not metric:
            raise ValueError("no metric given: pass metric= here or to tune.run")
        mode = mode or self.default_mode or "max"  # the old tune.run default, which the seed program relies on
        check_mode(mode)
        return metric, mode

    def get_best_trial(self, metric: str | None = None, mode: str | None = None, scope: str = "last",
                       filter_nan_and_inf: bool = True) -> Trial | None:
        metric, mode = self._metric_mode(metric, mode)
        trial = best_trial(self.trials, metric, mode, scope, filter_nan_and_inf)
        if trial is None and not any(metric in t.metric_analysis for t in self.trials):
            reported = sorted({k for t in self.trials for k in t.metric_analysis})
            raise RuntimeError(f"no trial reported the metric {metric!r}; reported metrics: "
                               f"{', '.join(reported) or 'none'}")
        return trial

    def get_best_config(self, metric: str | None = None, mode: str | None = None, scope: str = "last"
                        ) -> dict[str, Any] | None:
        trial = self.get_best_trial(metric, mode, scope)
        return trial.config if trial is not None else None

    def get_best_logdir(self, metric: str | None = None, mode: str | None = None, scope: str = "last") -> str | None:
        trial = self.get_best_trial(metric, mode, scope)
        return trial.local_path if trial is not None else None

    def get_best_checkpoint(self, trial: Trial, metric: str | None = None, mode: str | None = None
                            ) -> Checkpoint | None:
        metric, mode = self._metric_mode(metric, mode)
        scored = [(m[metric], c) for c, m in trial.checkpoints if metric in m]
        if not scored:
            return None
        return (max if mode == "max" else min)(scored, key=lambda t: t[0])[1]

    def get_last_checkpoint(self, trial: Trial | None = None, metric: str = "training_iteration",
                            mode: str = "max") -> Checkpoint | None:
        trial = trial or self.get_best_trial(metric, mode)
        return trial.checkpoint if trial is not None else None

    def get_all_configs(self, prefix: bool = False) -> dict[str, dict[str, Any]]:
        return {t.local_path: t.config for t in self.trials}

    def get_trial_checkpoints_paths(self, trial: Trial, metric: str | None = None) -> list[tuple[str, Any]]:
        metric = metric or self.default_metric or "training_iteration"
        return [(c.path, m.get(metric)) for c, m in trial.checkpoints]

    @property
    def best_trial(self) -> Trial | None:
        return self.get_best_trial(self.default_metric, self.default_mode)

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.get_best_config(self.default_metric, self.default_mode)

    @property
    def best_result(self) -> dict[str, Any]:
        trial = self.best_trial
        return dict(trial.last_result) if trial is not None else {}

    @property
    def best_checkpoint(self) -> Checkpoint | None:
        trial = self.best_trial
        return self.get_best_checkpoint(trial) if trial is not None else None

    @property
    def best_logdir(self) -> str | None:
        trial = self.best_trial
        return trial.local_path if trial is not None else None

    @property
    def best_dataframe(self) -> Any:
        trial = self.best_trial
        return self.trial_dataframes.get(trial.local_path) if trial is not None else None

    @property
    def best_result_df(self) -> Any:
        import pandas as pd

        return pd.DataFrame([flatten(self.best_result)])

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {t.trial_id: dict(t.last_result) for t in self.trials}

    @property
    def results_df(self) -> Any:
        import pandas as pd

        df = pd.DataFrame([flatten(t.last_result) for t in self.trials if t.last_result])
        return df.set_index("trial_id", drop=True) if "trial_id" in df else df

    @property
    def trial_dataframes(self) -> dict[str, Any]:
        return {t.local_path: rows_to_dataframe(read_result_json(os.path.join(t.local_path, "result.json")))
                for t in self.trials}

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> Any:
        """One row per trial: its last result, or with ``metric`` and ``mode`` its best one."""
        import pandas as pd

        rows = []
        for t in self.trials:
            row = dict(t.last_result)
            if metric is not None:
                check_mode(mode)
                best = None
                for r in read_result_json(os.path.join(t.local_path, "result.json")):
                    if metric in r and (best is None or (r[metric] > best[metric]) == (mode != "min")):
                        best = r
                row = best or row
            flat = flatten(row)
            flat["logdir"] = t.local_path
            rows.append(flat)
        return pd.DataFrame(rows)

    def stats(self) -> dict[str, Any]:
        return {"trials": len(self.trials)}
