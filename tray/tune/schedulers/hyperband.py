"""Synchronous HyperBand (Ray's ``HyperBandScheduler``): trials are grouped into brackets; a
bracket runs all its trials to a milestone (pausing those that get there first), keeps the best
``1/reduction_factor`` of them, stops the rest, and raises the milestone by the factor."""

from __future__ import annotations

import math
from typing import Any

from .trial_scheduler import FIFOScheduler, TrialScheduler, check_mode, signed


class _HyperBandBracket:
    """One bracket's successive halving (pure). ``on_result`` returns the trial's action plus
    the other trials to stop and to resume when a halving happens."""

    def __init__(self, n0: int, r0: float, eta: float, max_t: float) -> None:
        self.n0, self.r, self.eta, self.max_t = n0, min(r0, max_t), eta, max_t
        self.trials: list[str] = []
        self.scores: dict[str, float] = {}
        self.live: set[str] = set()
        self.at_milestone: set[str] = set()
        self.resumable: set[str] = set()
        self.full = False

    def add(self, trial_id: str) -> None:
        self.trials.append(trial_id)
        self.live.add(trial_id)
        if len(self.trials) >= self.n0:
            self.full = True

    def remove(self, trial_id: str) -> tuple[list[str], list[str]]:
        """A trial ended by itself (finished or failed): it no longer holds up the milestone."""
        self.live.discard(trial_id)
        self.at_milestone.discard(trial_id)
        self.resumable.discard(trial_id)
        return self._maybe_halve()[1:]

    def mark_full(self) -> tuple[list[str], list[str]]:
        self.full = True
        return self._maybe_halve()[1:]

    def on_result(self, trial_id: str, t: float, score: float) -> tuple[str, list[str], list[str]]:
        self.scores[trial_id] = -math.inf if math.isnan(score) else score
        self.resumable.discard(trial_id)
        if t >= self.max_t:
            self.live.discard(trial_id)
            self.at_milestone.discard(trial_id)
            _, stop, resume = self._maybe_halve()
            return TrialScheduler.STOP, stop, resume
        if t < self.r:
            return TrialScheduler.CONTINUE, [], []
        self.at_milestone.add(trial_id)
        kept, stop, resume = self._maybe_halve()
        if kept is None:
            return TrialScheduler.PAUSE, [], []
        action = TrialScheduler.CONTINUE if trial_id in kept else TrialScheduler.STOP
        return action, [s for s in stop if s != trial_id], [r for r in resume if r != trial_id]

    def _maybe_halve(self) -> tuple[set[str] | None, list[str], list[str]]:
        if not self.full or not self.live or not self.live <= self.at_milestone:
            return None, [], []
        ranked = sorted(self.live, key=lambda tid: self.scores.get(tid, -math.inf), reverse=True)
        keep_n = max(1, int(len(ranked) / self.eta))
        kept, dropped = set(ranked[:keep_n]), ranked[keep_n:]
        self.live = set(kept)
        self.at_milestone.clear()
        self.r = min(self.r * self.eta, self.max_t)
        self.resumable |= kept
        return kept, dropped, sorted(kept)


class HyperBandScheduler(FIFOScheduler):
    _supports_buffered_results = False

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 max_t: float = 81, reduction_factor: float = 3, stop_last_trials: bool = True) -> None:
        if max_t <= 0 or reduction_factor <= 1:
            raise ValueError(f"HyperBand needs max_t > 0 and reduction_factor > 1, got {max_t}, {reduction_factor}")
        check_mode(mode)
        self._time_attr = time_attr
        self._metric, self._mode = metric, mode
        self._eta, self._max_t = reduction_factor, max_t
        self._s_max_1 = int(round(math.log(max_t) / math.log(reduction_factor), 5)) + 1
        self._brackets: list[_HyperBandBracket] = []
        self._trial_bracket: dict[str, _HyperBandBracket] = {}
        self._next_s = self._s_max_1 - 1

    def _new_bracket(self) -> _HyperBandBracket:
        s = self._next_s
        self._next_s = self._next_s - 1 if self._next_s > 0 else self._s_max_1 - 1
        n0 = int(math.ceil(self._s_max_1 / (s + 1) * self._eta ** s))
        r0 = max(1.0, self._max_t * self._eta ** -s)
        bracket = _HyperBandBracket(n0, r0, self._eta, self._max_t)
        self._brackets.append(bracket)
        return bracket

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._require("HyperBandScheduler")
        bracket = self._brackets[-1] if self._brackets and not self._brackets[-1].full else self._new_bracket()
        bracket.add(trial.trial_id)
        self._trial_bracket[trial.trial_id] = bracket

    def _apply(self, tune_controller: Any, stop: list[str], resume: list[str]) -> None:
        for trial in tune_controller.get_trials():
            if trial.trial_id in stop and not trial.is_finished():
                tune_controller.stop_trial(trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        metric, mode = self._require("HyperBandScheduler")
        found = self._trial_bracket.get(trial.trial_id)
        if found is None or self._time_attr not in result or metric not in result:
            return TrialScheduler.CONTINUE
        action, stop, resume = found.on_result(trial.trial_id, result[self._time_attr], signed(result[metric], mode))
        self._apply(tune_controller, stop, resume)
        return action

    def _ended(self, tune_controller: Any, trial: Any) -> None:
        bracket = self._trial_bracket.pop(trial.trial_id, None)
        if bracket is not None:
            self._apply(tune_controller, *bracket.remove(trial.trial_id))

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._ended(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        if tune_controller.search_finished():
            for bracket in self._brackets:
                if not bracket.full:
                    self._apply(tune_controller, *bracket.mark_full())
        for trial in tune_controller.get_trials():
            if trial.status == "PENDING" and tune_controller.has_resources_for_trial(trial):
                return trial
        for trial in tune_controller.get_trials():
            held = self._trial_bracket.get(trial.trial_id)
            if trial.status == "PAUSED" and held is not None and trial.trial_id in held.resumable \
                    and tune_controller.has_resources_for_trial(trial):
                return trial
        return None

    def debug_string(self) -> str:
        return f"Using HyperBand: {len(self._brackets)} brackets, milestones " + \
            ", ".join(f"{b.r:g}" for b in self._brackets)
