"""The scheduler interface (Ray's ``ray.tune.schedulers.TrialScheduler``) and FIFO.

A scheduler decides, per result, whether a trial goes on (CONTINUE), pauses (PAUSE) or stops
(STOP), and which waiting trial runs next. tray's schedulers keep their decision logic in pure
classes beside these wrappers (``_Bracket``, ``_HyperBandBracket``, ``median_decision``,
``PBTDecider``), tested with hypothesis against small models."""

from __future__ import annotations

from typing import Any


class TrialScheduler:
    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    _metric: str | None = None
    _mode: str | None = None
    _supports_buffered_results = True

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def supports_buffered_results(self) -> bool:
        return self._supports_buffered_results

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if self._metric and metric and self._metric != metric:
            return False
        if self._mode and mode and self._mode != mode:
            return False
        if metric:
            self._metric = metric
        if mode:
            check_mode(mode)
            self._mode = mode
        return True

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        pass

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        pass

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        pass

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        pass

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        for status in ("PENDING", "PAUSED"):
            for trial in tune_controller.get_trials():
                if trial.status == status and tune_controller.has_resources_for_trial(trial):
                    return trial
        return None

    def debug_string(self) -> str:
        return type(self).__name__

    def _require(self, what: str) -> tuple[str, str]:
        if not self._metric or not self._mode:
            raise ValueError(f"{what} needs a metric and a mode: pass them to the scheduler or to "
                             "TuneConfig(metric=..., mode=...) / tune.run(metric=..., mode=...)")
        return self._metric, self._mode


class FIFOScheduler(TrialScheduler):
    """Trials run in the order they come and are never paused or stopped early."""


def check_mode(mode: str | None) -> None:
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


def signed(value: float, mode: str) -> float:
    """The score in 'higher is better' terms."""
    return value if mode == "max" else -value
