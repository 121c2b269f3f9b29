"""Median stopping (Ray's ``MedianStoppingRule``): a trial whose best score so far is worse than
the median of the other trials' running averages at the same time is stopped."""

from __future__ import annotations

import statistics
from typing import Any

from .trial_scheduler import FIFOScheduler, TrialScheduler, check_mode, signed


def running_mean(history: list[tuple[float, float]], t: float) -> float | None:
    """The mean score of ``(time, score)`` results up to time ``t`` (None before any)."""
    scores = [s for tt, s in history if tt <= t]
    return sum(scores) / len(scores) if scores else None


def median_decision(trial_id: str, t: float, histories: dict[str, list[tuple[float, float]]], grace_period: float,
                    min_samples_required: int) -> bool:
    """Should ``trial_id`` stop at time ``t``? Pure: ``histories`` maps every trial to its
    ``(time, score)`` results (higher score is better)."""
    if t < grace_period:
        return False
    means = [running_mean(h, t) for tid, h in histories.items()
             if tid != trial_id and h and max(tt for tt, _ in h) >= t]
    others = [m for m in means if m is not None]
    if len(others) < min_samples_required:
        return False
    own = [s for tt, s in histories.get(trial_id, []) if tt <= t]
    if not own:
        return False
    return max(own) < statistics.median(others)


class MedianStoppingRule(FIFOScheduler):
    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None, mode: str | None = None,
                 grace_period: float = 60.0, min_samples_required: int = 3, min_time_slice: float = 0,
                 hard_stop: bool = True) -> None:
        check_mode(mode)
        if min_time_slice:
            raise ValueError("MedianStoppingRule: min_time_slice is not supported (trials are not time-sliced here)")
        self._time_attr = time_attr
        self._metric, self._mode = metric, mode
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._hard_stop = hard_stop
        self._histories: dict[str, list[tuple[float, float]]] = {}
        self._stopped: set[str] = set()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        metric, mode = self._require("MedianStoppingRule")
        if self._time_attr not in result or metric not in result:
            return TrialScheduler.CONTINUE
        t = result[self._time_attr]
        self._histories.setdefault(trial.trial_id, []).append((t, signed(result[metric], mode)))
        if trial.trial_id in self._stopped:
            return TrialScheduler.STOP if self._hard_stop else TrialScheduler.PAUSE
        if median_decision(trial.trial_id, t, self._histories, self._grace_period, self._min_samples_required):
            self._stopped.add(trial.trial_id)
            return TrialScheduler.STOP if self._hard_stop else TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped)}."
