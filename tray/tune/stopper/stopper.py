"""Stopping rules (Ray's ``ray.tune.stopper``): ``__call__(trial_id, result)`` says whether that
trial stops, ``stop_all()`` whether the whole run does. A dict of criteria and a plain function
are turned into stoppers by :func:`as_stopper`."""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any


class Stopper:
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        raise NotImplementedError

    def stop_all(self) -> bool:
        return False


class NoopStopper(Stopper):
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False


class FunctionStopper(Stopper):
    def __init__(self, function: Callable[[str, dict[str, Any]], bool]) -> None:
        if not callable(function):
            raise TypeError(f"a stop function must be callable, got {type(function).__name__}")
        self._fn = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self._fn(trial_id, result))

    @classmethod
    def is_valid_function(cls, fn: Any) -> bool:
        return callable(fn) and not isinstance(fn, Stopper)


class DictStopper(Stopper):
    """Stop a trial once any ``result[key] >= value`` (Ray's dict criteria)."""

    def __init__(self, criteria: dict[str, Any]) -> None:
        for key, value in criteria.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"stop criterion {key!r} must be a number, got {value!r}")
        self._criteria = dict(criteria)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, value in self._criteria.items():
            got = result.get(key)
            if isinstance(got, (int, float)) and not isinstance(got, bool) and got >= value:
                return True
        return False


class MaximumIterationStopper(Stopper):
    def __init__(self, max_iter: int) -> None:
        self._max_iter = max_iter
        self._iter: dict[str, int] = defaultdict(int)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._iter[trial_id] += 1
        return self._iter[trial_id] >= self._max_iter


class TrialPlateauStopper(Stopper):
    """Stop a trial whose ``metric`` has a std below ``std`` over its last ``num_results``
    results, after ``grace_period`` results (and, if given, past ``metric_threshold``)."""

    def __init__(self, metric: str, std: float = 0.01, num_results: int = 4, grace_period: int = 4,
                 metric_threshold: float | None = None, mode: str | None = None) -> None:
        if metric_threshold is not None and mode not in ("min", "max"):
            raise ValueError("TrialPlateauStopper: with metric_threshold, mode must be 'min' or 'max'")
        self._metric, self._std, self._num_results = metric, std, num_results
        self._grace_period, self._threshold, self._mode = grace_period, metric_threshold, mode
        self._iter: dict[str, int] = defaultdict(int)
        self._window: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=num_results))

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self._metric)
        if value is None:
            return False
        self._iter[trial_id] += 1
        self._window[trial_id].append(value)
        if self._iter[trial_id] < self._grace_period or len(self._window[trial_id]) < self._num_results:
            return False
        if self._threshold is not None:
            if self._mode == "min" and value > self._threshold:
                return False
            if self._mode == "max" and value < self._threshold:
                return False
        return statistics.pstdev(self._window[trial_id]) < self._std


class ExperimentPlateauStopper(Stopper):
    """Stop everything once the top ``top`` scores' std stays below ``std`` for ``patience`` results."""

    def __init__(self, metric: str, std: float = 0.001, top: int = 10, mode: str = "min", patience: int = 0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ExperimentPlateauStopper: mode must be 'min' or 'max', got {mode!r}")
        self._metric, self._std, self._top, self._mode, self._patience = metric, std, top, mode, patience
        self._scores: list[float] = []
        self._stuck = 0
        self._stop = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self._metric not in result:
            return False
        self._scores.append(result[self._metric])
        top = sorted(self._scores, reverse=self._mode == "max")[: self._top]
        if len(top) == self._top and statistics.pstdev(top) <= self._std:
            self._stuck += 1
        else:
            self._stuck = 0
        self._stop = self._stuck > self._patience
        return self._stop

    def stop_all(self) -> bool:
        return self._stop


class TimeoutStopper(Stopper):
    def __init__(self, timeout: float) -> None:
        if hasattr(timeout, "total_seconds"):
            timeout = timeout.total_seconds()
        if not isinstance(timeout, (int, float)) or timeout <= 0 or math.isnan(timeout):
            raise ValueError(f"TimeoutStopper: timeout must be a positive number of seconds, got {timeout!r}")
        self._timeout = float(timeout)
        self._start: float | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self._start is None:
            self._start = time.monotonic()
        return time.monotonic() - self._start >= self._timeout


class CombinedStopper(Stopper):
    def __init__(self, *stoppers: Stopper) -> None:
        self._stoppers = stoppers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return any([s(trial_id, result) for s in self._stoppers])

    def stop_all(self) -> bool:
        return any([s.stop_all() for s in self._stoppers])


def as_stopper(stop: Any) -> Stopper:
    """Ray's accepted forms of ``stop`` -> a Stopper (None: never)."""
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, dict):
        return DictStopper(stop)
    if callable(stop):
        return FunctionStopper(stop)
    raise ValueError(f"stop must be a dict of criteria, a function (trial_id, result) -> bool or a Stopper, "
                     f"got {type(stop).__name__}")


__all__ = ["CombinedStopper", "ExperimentPlateauStopper", "FunctionStopper", "MaximumIterationStopper",
           "NoopStopper", "Stopper", "TimeoutStopper", "TrialPlateauStopper", "as_stopper"]
