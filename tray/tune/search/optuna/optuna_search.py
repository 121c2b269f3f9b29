"""OptunaSearch: each trial asks an optuna study for a point of the param space (converted
from tray's domains to optuna distributions) and tells it the final score."""

from __future__ import annotations

from typing import Any

from ....lowlevel import require
from ..sample import Categorical, Domain, Float, Integer, LogUniform, Normal, Quantized
from ..searcher import Searcher
from ..variant_generator import flatten_space, unflatten


def to_distribution(name: str, domain: Domain) -> Any:
    """tray domain -> optuna distribution (raises ValueError naming what optuna cannot take)."""
    dist = require("optuna.distributions", "tune")
    sampler = domain.get_sampler()
    step = None
    if isinstance(sampler, Quantized):
        step, sampler = sampler.q, sampler.sampler
    log = isinstance(sampler, LogUniform)
    if isinstance(sampler, Normal):
        raise ValueError(f"OptunaSearch cannot search {name!r}: optuna has no normal distribution (randn)")
    if isinstance(domain, Float):
        return dist.FloatDistribution(domain.lower, domain.upper, log=log and step is None,
                                      step=None if log else step)
    if isinstance(domain, Integer):
        return dist.IntDistribution(domain.lower, domain.upper - 1, log=log and not step, step=int(step or 1))
    if isinstance(domain, Categorical):
        return dist.CategoricalDistribution(domain.categories)
    raise ValueError(f"OptunaSearch cannot search {name!r}: {type(domain).__name__} (sample_from) has no optuna "
                     "equivalent")


class OptunaSearch(Searcher):
    def __init__(self, space: dict[str, Any] | None = None, metric: str | list[str] | None = None,
                 mode: str | list[str] | None = None, points_to_evaluate: list[dict[str, Any]] | None = None,
                 sampler: Any = None, seed: int | None = None, evaluated_rewards: list[float] | None = None) -> None:
        ot = require("optuna", "tune")
        if isinstance(metric, list) or isinstance(mode, list):
            raise ValueError("OptunaSearch: multi-objective search (a list of metrics) is not supported")
        super().__init__(metric if isinstance(metric, str) or metric is None else None,
                         mode if isinstance(mode, str) or mode is None else None)
        self._ot = ot
        self._space: dict[str, Any] | None = None
        self._points = list(points_to_evaluate or [])
        self._evaluated_rewards = evaluated_rewards
        self._sampler = sampler if sampler is not None else ot.samplers.TPESampler(seed=seed)
        self._ot_trials: dict[str, Any] = {}
        self._study: Any = None
        if space:
            self._set_space(space)

    def _set_space(self, space: dict[str, Any]) -> None:
        flat = flatten_space(space)
        self._space = {k: to_distribution(k, v) for k, v in flat.items() if isinstance(v, Domain)}
        self._constants = {k: v for k, v in flat.items() if not isinstance(v, Domain)}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        super().set_search_properties(metric, mode, config, **spec)
        if self._space is None and config:
            self._set_space(config)
        return True

    def _setup_study(self) -> None:
        if self._metric is None or self._mode is None:
            raise ValueError("OptunaSearch needs a metric and a mode (pass them here or to TuneConfig/tune.run)")
        if not self._space:
            raise ValueError("OptunaSearch needs a search space: pass space= or a param_space with tune domains")
        self._ot.logging.set_verbosity(self._ot.logging.WARNING)
        direction = "maximize" if self._mode == "max" else "minimize"
        self._study = self._ot.create_study(sampler=self._sampler, direction=direction)
        if self._evaluated_rewards is not None:
            for point, reward in zip(self._points, self._evaluated_rewards, strict=True):
                self.add_evaluated_point(point, reward)
            self._points = []
        for point in self._points:
            self._study.enqueue_trial(_flatten_point(point))

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._study is None:
            self._setup_study()
        ot_trial = self._study.ask(fixed_distributions=self._space)
        self._ot_trials[trial_id] = ot_trial
        return unflatten({**self._constants, **ot_trial.params}) if hasattr(self, "_constants") \
            else unflatten(dict(ot_trial.params))

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and self._metric in result and "training_iteration" in result:
            try:
                ot_trial.report(result[self._metric], result["training_iteration"])
            except Exception:  # noqa: BLE001 - intermediate values are advice to the sampler
                pass

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.pop(trial_id, None)
        if ot_trial is None:
            return
        value = (result or {}).get(self._metric) if self._metric else None
        if error or value is None:
            self._study.tell(ot_trial, state=self._ot.trial.TrialState.FAIL)
        else:
            self._study.tell(ot_trial, value)

    def add_evaluated_point(self, parameters: dict[str, Any], value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        if self._study is None:
            self._setup_study()
        state = self._ot.trial.TrialState
        trial = self._ot.trial.create_trial(
            params=_flatten_point(parameters), distributions=self._space,
            value=None if error or pruned else value,
            state=state.FAIL if error else state.PRUNED if pruned else state.COMPLETE,
            intermediate_values=dict(enumerate(intermediate_values or [])))
        self._study.add_trial(trial)


def _flatten_point(point: dict[str, Any]) -> dict[str, Any]:
    return flatten_space(point)
