"""``ResultGrid`` (Ray's ``ray.tune.ResultGrid``): the results of a run's trials."""

from __future__ import annotations

import math
import os
from typing import Any

from .._air import Result
from .._air.result import flatten, read_result_json, rows_to_dataframe
from .experiment.trial import Trial
from .schedulers.trial_scheduler import check_mode


class _TrialResult(Result):
    """A Result whose metrics DataFrame is read from the trial's ``result.json`` when first asked for."""

    _df: Any = None
    _df_loaded: bool = False

    @property
    def metrics_dataframe(self) -> Any:
        if not self._df_loaded and self.path is not None:
            self._df = rows_to_dataframe(read_result_json(os.path.join(self.path, "result.json")))
            self._df_loaded = True
        return self._df

    @metrics_dataframe.setter
    def metrics_dataframe(self, value: Any) -> None:
        if value is not None:
            self._df, self._df_loaded = value, True


def trial_to_result(trial: Trial) -> Result:
    return _TrialResult(metrics=dict(trial.last_result), checkpoint=trial.checkpoint, error=trial.error,
                        path=trial.local_path, metrics_dataframe=None, best_checkpoints=list(trial.checkpoints))


def _valid(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def best_trial(trials: list[Trial], metric: str, mode: str, scope: str = "last",
               filter_nan_and_inf: bool = True) -> Trial | None:
    """The trial whose ``metric`` (per ``scope``: last, avg, last-5-avg, last-10-avg, all) is best."""
    check_mode(mode)
    if mode is None:
        raise ValueError("a mode ('min' or 'max') is needed to rank trials")
    if scope not in ("all", "last", "avg", "last-5-avg", "last-10-avg"):
        raise ValueError(f"scope must be one of all, last, avg, last-5-avg, last-10-avg; got {scope!r}")
    best, best_score = None, None
    for trial in trials:
        stats = trial.metric_analysis.get(metric)
        if stats is None:
            continue
        key = mode if scope == "all" else scope
        score = stats.get(key)
        if score is None or (filter_nan_and_inf and not _valid(score)):
            continue
        if best_score is None or (score > best_score if mode == "max" else score < best_score):
            best, best_score = trial, score
    return best


class ResultGrid:
    def __init__(self, trials: list[Trial], experiment_path: str, default_metric: str | None = None,
                 default_mode: str | None = None) -> None:
        self._trials = trials
        self._results = [trial_to_result(t) for t in trials]
        self._experiment_path = experiment_path
        self._metric, self._mode = default_metric, default_mode

    @property
    def experiment_path(self) -> str:
        return self._experiment_path

    @property
    def filesystem(self) -> Any:
        from .._air.checkpoint import resolve_filesystem

        return resolve_filesystem(self._experiment_path)[0]

    def get_best_result(self, metric: str | None = None, mode: str | None = None, scope: str = "last",
                        filter_nan_and_inf: bool = True) -> Result:
        metric = metric or self._metric
        mode = mode or self._mode
        if not metric or not mode:
            raise ValueError("get_best_result needs a metric and a mode: pass them here or to TuneConfig")
        check_mode(mode)
        if len(self._trials) == 1:
            return self._results[0]
        trial = best_trial(self._trials, metric, mode, scope, filter_nan_and_inf)
        if trial is None:
            reported = sorted({k for t in self._trials for k in t.metric_analysis})
            raise RuntimeError(f"no trial reported the metric {metric!r}"
                               f"{' as a finite number' if filter_nan_and_inf else ''}; reported metrics: "
                               f"{', '.join(reported) or 'none'}")
        return self._results[self._trials.index(trial)]

    def get_dataframe(self, filter_metric: str | None = None, filter_mode: str | None = None) -> Any:
        import pandas as pd

        rows = []
        for trial in self._trials:
            row: dict[str, Any] | None = None
            if filter_metric is not None:
                check_mode(filter_mode)
                if filter_mode is None:
                    raise ValueError("get_dataframe: filter_metric needs filter_mode")
                for r in read_result_json(os.path.join(trial.local_path, "result.json")):
                    if filter_metric in r and _valid(r[filter_metric]) and (
                            row is None or (r[filter_metric] > row[filter_metric]) == (filter_mode == "max")):
                        row = r
            if row is None:
                row = dict(trial.last_result)
            flat = flatten(row)
            flat["logdir"] = trial.local_path
            rows.append(flat)
        return pd.DataFrame(rows)

    @property
    def errors(self) -> list[BaseException]:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return sum(t.status == Trial.ERROR for t in self._trials)

    @property
    def num_terminated(self) -> int:
        return sum(t.status == Trial.TERMINATED for t in self._trials)

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> Result:
        return self._results[i]

    def __iter__(self) -> Any:
        return iter(self._results)

    def __repr__(self) -> str:
        return "ResultGrid<[\n" + ",\n".join(f"  {r!r}" for r in self._results) + "\n]>"
