"""ASHA (Ray's ``AsyncHyperBandScheduler``/``ASHAScheduler``): a trial that reaches a rung
(``grace_period * reduction_factor**k`` units of ``time_attr``) is stopped unless its score is in
the top ``1/reduction_factor`` of the scores recorded at that rung so far."""

from __future__ import annotations

import math
import random
from typing import Any

from .trial_scheduler import FIFOScheduler, TrialScheduler, check_mode, signed


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), ``q`` in [0, 1]."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class _Bracket:
    """One ASHA bracket: its rungs and the scores recorded at each (pure)."""

    def __init__(self, min_t: float, max_t: float, reduction_factor: float, s: int, stop_last_trials: bool = True):
        self.rf = reduction_factor
        max_rungs = int(math.log(max_t / min_t, reduction_factor) - s + 1)
        self.milestones = [min_t * reduction_factor ** (k + s) for k in reversed(range(max(0, max_rungs)))]
        self.recorded: dict[float, dict[str, float]] = {m: {} for m in self.milestones}
        self.max_t = max_t
        self.stop_last_trials = stop_last_trials

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        if not recorded:
            return None
        return quantile(list(recorded.values()), 1 - 1 / self.rf)

    def on_result(self, trial_id: str, cur_iter: float, score: float) -> str:
        """CONTINUE or STOP for a result at ``cur_iter`` with ``score`` (higher is better)."""
        if math.isnan(score):
            score = -math.inf
        action = TrialScheduler.CONTINUE
        for milestone in self.milestones:  # highest first
            recorded = self.recorded[milestone]
            if cur_iter < milestone or trial_id in recorded:
                continue
            cutoff = self.cutoff(recorded)
            if cutoff is not None and score < cutoff:
                action = TrialScheduler.STOP
            recorded[trial_id] = score
            break
        if cur_iter >= self.max_t and self.stop_last_trials:
            action = TrialScheduler.STOP
        return action


class AsyncHyperBandScheduler(FIFOScheduler):
    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 max_t: float = 100, grace_period: float = 1, reduction_factor: float = 4, brackets: int = 1,
                 stop_last_trials: bool = True, seed: int | None = None) -> None:
        if grace_period <= 0:
            raise ValueError(f"grace_period must be > 0, got {grace_period}")
        if max_t <= 0 or max_t < grace_period:
            raise ValueError(f"max_t must be >= grace_period > 0, got max_t={max_t}")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        if brackets < 1:
            raise ValueError(f"brackets must be >= 1, got {brackets}")
        check_mode(mode)
        self._time_attr = time_attr
        self._metric, self._mode = metric, mode
        self._brackets = [_Bracket(grace_period, max_t, reduction_factor, s, stop_last_trials) for s in range(brackets)]
        self._trial_bracket: dict[str, _Bracket] = {}
        self._rng = random.Random(seed)
        self._counter = 0

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._require("AsyncHyperBandScheduler")
        sizes = [len(b.milestones) for b in self._brackets]
        total = sum(sizes) or 1
        self._trial_bracket[trial.trial_id] = self._rng.choices(self._brackets, weights=[s / total for s in sizes])[0] \
            if len(self._brackets) > 1 else self._brackets[0]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        metric, mode = self._require("AsyncHyperBandScheduler")
        if self._time_attr not in result or metric not in result:
            return TrialScheduler.CONTINUE
        bracket = self._trial_bracket.get(trial.trial_id)
        if bracket is None:
            self.on_trial_add(tune_controller, trial)
            bracket = self._trial_bracket[trial.trial_id]
        return bracket.on_result(trial.trial_id, result[self._time_attr], signed(result[metric], mode))

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        metric, mode = self._require("AsyncHyperBandScheduler")
        if result and self._time_attr in result and metric in result:
            self._trial_bracket[trial.trial_id].on_result(trial.trial_id, result[self._time_attr],
                                                          signed(result[metric], mode))
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._trial_bracket.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        rungs = "; ".join(", ".join(f"Iter {m:.0f}: {len(b.recorded[m])} recorded" for m in b.milestones)
                          for b in self._brackets)
        return f"Using AsyncHyperBand: num_stopped={0}\n{rungs}"


ASHAScheduler = AsyncHyperBandScheduler
