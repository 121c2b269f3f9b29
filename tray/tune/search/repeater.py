"""``Repeater`` (Ray's ``ray.tune.search.Repeater``): each suggestion runs ``repeat`` times and
the wrapped searcher hears the mean of the repeats' final scores, once all have finished."""

from __future__ import annotations

from typing import Any

from .searcher import Searcher

TRIAL_INDEX = "__trial_index__"


class _TrialGroup:
    def __init__(self, primary_trial_id: str, config: dict[str, Any], max_trials: int) -> None:
        self.primary_trial_id = primary_trial_id
        self.config = config
        self.max_trials = max_trials
        self.trials: dict[str, float | None] = {primary_trial_id: None}

    def full(self) -> bool:
        return len(self.trials) >= self.max_trials

    def finished(self) -> bool:
        return self.full() and all(v is not None for v in self.trials.values())


class Repeater(Searcher):
    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"Repeater: repeat must be an int >= 1, got {repeat!r}")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher
        self.repeat = repeat
        self._set_index = set_index
        self._groups: list[_TrialGroup] = []
        self._trial_id_to_group: dict[str, _TrialGroup] = {}
        self._current_group: _TrialGroup | None = None

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._current_group is None or self._current_group.full():
            config = self.searcher.suggest(trial_id)
            if not isinstance(config, dict):
                return config
            self._current_group = _TrialGroup(trial_id, dict(config), self.repeat)
            self._groups.append(self._current_group)
            index = 0
        else:
            index = len(self._current_group.trials)
            self._current_group.trials[trial_id] = None
        self._trial_id_to_group[trial_id] = self._current_group
        config = dict(self._current_group.config)
        if self._set_index:
            config[TRIAL_INDEX] = index
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        group = self._trial_id_to_group.get(trial_id)
        if group is None:
            return
        score = (result or {}).get(self._metric) if self._metric else None
        group.trials[trial_id] = float("nan") if error or score is None else float(score)
        if group.finished():
            scores = [v for v in group.trials.values() if v is not None and v == v]
            mean = sum(scores) / len(scores) if scores else None
            final = dict(result or {})
            if self._metric and mean is not None:
                final[self._metric] = mean
            self.searcher.on_trial_complete(group.primary_trial_id, result=final, error=mean is None)
