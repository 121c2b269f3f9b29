"""Population Based Training (Ray's ``PopulationBasedTraining``): every
``perturbation_interval`` of ``time_attr``, a trial in the bottom ``quantile_fraction`` copies
a top trial's latest checkpoint (exploit) and continues with that trial's config perturbed or
resampled (explore). ``PBTDecider`` and ``explore`` are the pure parts."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from typing import Any

from ..search.sample import Domain
from .trial_scheduler import FIFOScheduler, TrialScheduler, check_mode, signed


def explore(config: dict[str, Any], mutations: dict[str, Any], resample_probability: float,
            perturbation_factors: tuple[float, float], rng: random.Random,
            custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A perturbed copy of ``config``: each mutated key is resampled (with probability
    ``resample_probability``, or when its value is outside a list's choices), else nudged: a
    list value moves to a neighbour, a number is multiplied by one of ``perturbation_factors``."""
    new = copy.deepcopy(config)
    for key, spec in mutations.items():
        old = config.get(key)
        if isinstance(spec, dict):
            new[key] = explore(old if isinstance(old, dict) else {}, spec, resample_probability, perturbation_factors,
                               rng)
        elif isinstance(spec, (list, tuple)):
            choices = list(spec)
            if rng.random() < resample_probability or old not in choices:
                new[key] = rng.choice(choices)
            else:
                i = choices.index(old) + rng.choice([-1, 1])
                new[key] = choices[min(max(i, 0), len(choices) - 1)]
        elif isinstance(spec, Domain) or callable(spec):
            if rng.random() < resample_probability or not isinstance(old, (int, float)):
                new[key] = spec.sample(None, random_state=rng) if isinstance(spec, Domain) else spec()
            else:
                value = old * rng.choice(list(perturbation_factors))
                new[key] = int(value) if isinstance(old, int) and not isinstance(old, bool) else value
        else:
            raise ValueError(f"hyperparam_mutations[{key!r}] must be a list, a dict, a tune search space or a "
                             f"function, got {type(spec).__name__}")
    if custom_explore_fn is not None:
        new = custom_explore_fn(new)
        if new is None:
            raise ValueError("custom_explore_fn must return the new config, it returned None")
    return new


class PBTDecider:
    """Which trials exploit which (pure): scores and last-perturbation times per trial."""

    def __init__(self, perturbation_interval: float, burn_in_period: float, quantile_fraction: float,
                 rng: random.Random) -> None:
        if not 0 <= quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in [0, 0.5], got {quantile_fraction}")
        if perturbation_interval <= 0:
            raise ValueError(f"perturbation_interval must be > 0, got {perturbation_interval}")
        self.interval, self.burn_in, self.q, self.rng = perturbation_interval, burn_in_period, quantile_fraction, rng
        self.scores: dict[str, float] = {}
        self.last_perturb: dict[str, float] = {}

    def quantiles(self) -> tuple[list[str], list[str]]:
        """(bottom, top) trial ids by latest score."""
        ranked = sorted(self.scores, key=lambda t: (self.scores[t], t))
        if len(ranked) <= 1:
            return [], []
        n = int(math.ceil(len(ranked) * self.q))
        if n > len(ranked) / 2:
            n = int(math.floor(len(ranked) / 2))
        return ranked[:n], ranked[len(ranked) - n:]

    def on_result(self, trial_id: str, t: float, score: float) -> str | None:
        """The trial to clone when ``trial_id`` should exploit now, else None."""
        self.scores[trial_id] = -math.inf if math.isnan(score) else score
        if t < self.burn_in or t - self.last_perturb.get(trial_id, 0.0) < self.interval:
            return None
        self.last_perturb[trial_id] = t
        bottom, top = self.quantiles()
        if trial_id in bottom and top:
            return self.rng.choice(top)
        return None

    def remove(self, trial_id: str) -> None:
        self.scores.pop(trial_id, None)


class PopulationBasedTraining(FIFOScheduler):
    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None, mode: str | None = None,
                 perturbation_interval: float = 60.0, burn_in_period: float = 0.0,
                 hyperparam_mutations: dict[str, Any] | None = None, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, perturbation_factors: tuple[float, float] = (1.2, 0.8),
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None, log_config: bool = True,
                 require_attrs: bool = True, synch: bool = False, seed: int | None = None) -> None:
        if not hyperparam_mutations and custom_explore_fn is None:
            raise ValueError("PopulationBasedTraining needs hyperparam_mutations or custom_explore_fn")
        check_mode(mode)
        if synch:
            raise ValueError("PopulationBasedTraining(synch=True) is not supported: tray's PBT is asynchronous")
        self._require_attrs = require_attrs
        self._time_attr = time_attr
        self._metric, self._mode = metric, mode
        self._mutations = hyperparam_mutations or {}
        self._resample_probability = resample_probability
        self._factors: tuple[float, float] = (perturbation_factors[0], perturbation_factors[1])
        self._custom_explore_fn = custom_explore_fn
        self._rng = random.Random(seed)
        self._decider = PBTDecider(perturbation_interval, burn_in_period, quantile_fraction, self._rng)
        self._num_perturbations = 0
        self._log_config = log_config
        self._trials: dict[str, Any] = {}

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._require("PopulationBasedTraining")
        self._trials[trial.trial_id] = trial

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        metric, mode = self._require("PopulationBasedTraining")
        if self._time_attr not in result or metric not in result:
            if self._require_attrs:
                missing = [k for k in (self._time_attr, metric) if k not in result]
                raise ValueError(f"PopulationBasedTraining: a result of {trial} lacks {missing} "
                                 "(pass require_attrs=False to let such results through)")
            return TrialScheduler.CONTINUE
        self._trials.setdefault(trial.trial_id, trial)
        clone_id = self._decider.on_result(trial.trial_id, result[self._time_attr], signed(result[metric], mode))
        if clone_id is None or clone_id == trial.trial_id:
            return TrialScheduler.CONTINUE
        source = self._trials[clone_id]
        if source.checkpoint is None:
            return TrialScheduler.CONTINUE  # nothing to copy yet: try at the next interval
        new_config = explore(source.config, self._mutations, self._resample_probability, self._factors, self._rng,
                             self._custom_explore_fn)
        self._num_perturbations += 1
        if self._log_config:
            _log_policy(tune_controller.experiment_path, trial, source, result, new_config)
        tune_controller.exploit(trial, new_config, source.checkpoint,
                                tag=f"{self._num_perturbations}@perturbed[{clone_id}]")
        return TrialScheduler.NOOP

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._decider.remove(trial.trial_id)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._decider.remove(trial.trial_id)

    def debug_string(self) -> str:
        return f"PopulationBasedTraining: {self._num_perturbations} checkpoints, {self._num_perturbations} perturbs"


def _log_policy(experiment_path: str, trial: Any, source: Any, result: dict[str, Any], new_config: dict[str, Any]
                ) -> None:
    """Append ``[old tag, new tag, source's step, trial's step, old config, new config]`` to
    ``pbt_policy_<trial_id>.txt`` (as Ray does; ``PopulationBasedTrainingReplay`` reads it). The
    trial's history becomes the source's history plus this change."""
    import json
    import os
    import shutil

    step = result.get("training_iteration", 0)
    src = os.path.join(experiment_path, f"pbt_policy_{source.trial_id}.txt")
    dst = os.path.join(experiment_path, f"pbt_policy_{trial.trial_id}.txt")
    if os.path.exists(src):
        shutil.copyfile(src, dst)
    elif os.path.exists(dst):
        os.unlink(dst)
    line = [source.trial_id, trial.trial_id, source.last_result.get("training_iteration", 0), step,
            source.config, new_config]
    with open(dst, "a") as f:
        f.write(json.dumps(line, default=repr) + "\n")


class PopulationBasedTrainingReplay(FIFOScheduler):
    """Replays one trial's PBT history (its ``pbt_policy_<trial_id>.txt``) on a single new trial:
    it starts with the first recorded config and switches config at each recorded step,
    continuing from its own latest checkpoint."""

    def __init__(self, policy_file: str) -> None:
        import json
        import os

        if not os.path.exists(policy_file):
            raise ValueError(f"PopulationBasedTrainingReplay: no policy file at {policy_file!r}")
        with open(policy_file) as f:
            self._policy = [json.loads(line) for line in f if line.strip()]
        if not self._policy:
            raise ValueError(f"PopulationBasedTrainingReplay: {policy_file!r} records no change")
        self.config = self._policy[0][4]
        self._changes = [(int(p[3]), p[5]) for p in self._policy]
        self._trial: Any = None

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self._trial is not None and self._trial is not trial:
            raise ValueError("PopulationBasedTrainingReplay replays one trial: run it with num_samples=1")
        self._trial = trial
        if trial.last_result == {}:
            trial.config = dict(self.config)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        step = result.get("training_iteration", 0)
        if not self._changes or step < self._changes[0][0]:
            return TrialScheduler.CONTINUE
        _, new_config = self._changes.pop(0)
        if trial.checkpoint is None:
            raise ValueError("PopulationBasedTrainingReplay needs the trial to checkpoint to change its config")
        tune_controller.exploit(trial, new_config, trial.checkpoint, tag="replay")
        return TrialScheduler.NOOP
