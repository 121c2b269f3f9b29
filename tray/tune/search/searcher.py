"""The searcher interface (Ray's ``ray.tune.search.Searcher``) and ``ConcurrencyLimiter``.

A searcher suggests configs one trial at a time (``suggest(trial_id)``: a dict, None for "not
now", or ``Searcher.FINISHED``) and learns from results (``on_trial_result``,
``on_trial_complete``). Users subclass it to plug in their own search."""

from __future__ import annotations

import copy
import pickle
from typing import Any

from ..schedulers.trial_scheduler import check_mode


class Searcher:
    FINISHED = "FINISHED"
    CKPT_FILE_TMPL = "searcher-state-{}.pkl"

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        check_mode(mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        """Take the run's metric/mode (and the param space) when the searcher was made without them."""
        if self._metric is None and metric:
            self._metric = metric
        if self._mode is None and mode:
            check_mode(mode)
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        raise NotImplementedError(f"{type(self).__name__} must implement suggest(trial_id)")

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    def add_evaluated_point(self, parameters: dict[str, Any], value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not take evaluated points")

    def get_state(self) -> dict[str, Any]:
        return copy.copy(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))


class ConcurrencyLimiter(Searcher):
    """At most ``max_concurrent`` of ``searcher``'s suggestions are live at once
    (``batch``: wait for the whole batch to finish before suggesting again)."""

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"ConcurrencyLimiter: max_concurrent must be an int >= 1, got {max_concurrent!r}")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set[str] = set()
        self.num_unfinished_live_trials = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.live_trials) >= self.max_concurrent or (self.batch and self.num_unfinished_live_trials > 0
                                                            and len(self.live_trials) > 0 and
                                                            self.num_unfinished_live_trials < len(self.live_trials)):
            return None
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.live_trials:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live_trials:
            return
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        self.num_unfinished_live_trials -= 1
        if not self.batch or self.num_unfinished_live_trials <= 0:
            if self.batch:
                self.live_trials.clear()
                self.num_unfinished_live_trials = 0
            else:
                self.live_trials.discard(trial_id)

    def add_evaluated_point(self, *args: Any, **kwargs: Any) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)
