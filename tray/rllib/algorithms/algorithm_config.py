"""AlgorithmConfig: Ray RLlib's chained-setter configuration (``PPOConfig().environment(...)
.training(...)``), its dict form for Tune (``to_dict``/``from_dict``, old keys accepted) and the
resource arithmetic that decides what each env runner asks for.

Every setter takes only options tray.rllib implements; an unknown keyword is a TypeError and an
unknown dict key a ValueError naming it (nothing is accepted and ignored).
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
from typing import Any, Self

from ._legacy_keys import translate

logger = logging.getLogger("tray.rllib")


class _NotProvided:
    """The default of every setter argument: "leave this setting as it is"."""

    def __repr__(self) -> str:
        return "NotProvided"


NotProvided: Any = _NotProvided()

MODEL_CONFIG_KEYS = {"fcnet_hiddens", "fcnet_activation", "head_fcnet_hiddens", "head_fcnet_activation",
                     "vf_share_layers", "free_log_std"}
_ACTIVATIONS = {"tanh", "relu", "linear", "silu", "swish", "elu"}


class AlgorithmConfig:
    """The settings shared by every algorithm; subclasses add their ``training()`` options."""

    def __init__(self, algo_class: type | None = None) -> None:
        self.algo_class = algo_class
        # environment
        self.env: Any = None
        self.env_config: dict[str, Any] = {}
        self.clip_actions = False
        # env runners
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 1
        self.rollout_fragment_length: int | str = "auto"
        self.num_cpus_per_env_runner: float | None = None  # None: 1, or less to fit the cluster
        self.explore = True
        self.sample_timeout_s = 60.0
        # learners
        self.num_learners = 0
        # training
        self.gamma = 0.99
        self.lr = 1e-3
        self.train_batch_size_per_learner = 4000
        self.minibatch_size: int | None = None
        self.num_epochs = 1
        self.grad_clip: float | None = None
        # rl module
        # Ray 2.60's DefaultModelConfig (algorithms add their auto-includes, e.g. PPO's vf_share_layers=False)
        self.model_config: dict[str, Any] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh",
                                              "head_fcnet_hiddens": [], "head_fcnet_activation": "relu",
                                              "vf_share_layers": True, "free_log_std": False}
        # resources
        self.num_cpus_for_main_process = 1.0
        # evaluation
        self.evaluation_interval: int | None = None
        self.evaluation_duration = 10
        self.evaluation_duration_unit = "episodes"
        self.evaluation_num_env_runners = 0
        self.evaluation_config: dict[str, Any] = {}
        # debugging / reporting / fault tolerance
        self.seed: int | None = None
        self.log_level = "WARN"
        self.metrics_num_episodes_for_smoothing = 100
        self.min_time_s_per_iteration: float | None = None
        self.min_sample_timesteps_per_iteration = 0
        self.restart_failed_env_runners = True
        self.ignore_env_runner_failures = False
        self.max_num_env_runner_restarts = 1000

    # ----------------------------------------------------------------- chained setters
    def environment(self, env: Any = NotProvided, *, env_config: dict | None = NotProvided,
                    clip_actions: bool = NotProvided) -> AlgorithmConfig:
        """The env: a gymnasium id, a registered name (``tune.register_env``), or a class taking ``env_config``."""
        return self._set(env=env, env_config=env_config, clip_actions=clip_actions)

    def env_runners(self, *, num_env_runners: int = NotProvided, num_envs_per_env_runner: int = NotProvided,
                    rollout_fragment_length: int | str = NotProvided, num_cpus_per_env_runner: float = NotProvided,
                    explore: bool = NotProvided, sample_timeout_s: float = NotProvided) -> AlgorithmConfig:
        return self._set(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                         rollout_fragment_length=rollout_fragment_length,
                         num_cpus_per_env_runner=num_cpus_per_env_runner, explore=explore,
                         sample_timeout_s=sample_timeout_s)

    def learners(self, *, num_learners: int = NotProvided) -> AlgorithmConfig:
        """``num_learners=0`` (the default) learns in the algorithm's own process, the only mode here."""
        return self._set(num_learners=num_learners)

    def training(self, *, gamma: float = NotProvided, lr: float = NotProvided,
                 train_batch_size_per_learner: int = NotProvided, train_batch_size: int = NotProvided,
                 minibatch_size: int = NotProvided, num_epochs: int = NotProvided,
                 grad_clip: float | None = NotProvided) -> AlgorithmConfig:
        if train_batch_size is not NotProvided:  # the old name, same meaning with one learner
            train_batch_size_per_learner = train_batch_size
        return self._set(gamma=gamma, lr=lr, train_batch_size_per_learner=train_batch_size_per_learner,
                         minibatch_size=minibatch_size, num_epochs=num_epochs, grad_clip=grad_clip)

    def rl_module(self, *, model_config: dict | Any = NotProvided) -> AlgorithmConfig:
        if model_config is not NotProvided:
            if not isinstance(model_config, dict):  # a DefaultModelConfig-like object
                model_config = {k: getattr(model_config, k) for k in MODEL_CONFIG_KEYS if hasattr(model_config, k)}
            merged = dict(self.model_config)
            merged.update(model_config)
            self.model_config = merged
        return self

    def framework(self, framework: str = NotProvided, **_unused: Any) -> AlgorithmConfig:
        if _unused:
            raise TypeError(f"framework() options {sorted(_unused)} are not supported by tray.rllib")
        if framework is not NotProvided and framework != "torch":
            raise ValueError(f"framework {framework!r} is not supported: tray.rllib runs on torch only")
        return self

    def api_stack(self, *, enable_rl_module_and_learner: bool = True,
                  enable_env_runner_and_connector_v2: bool = True) -> AlgorithmConfig:
        if not (enable_rl_module_and_learner and enable_env_runner_and_connector_v2):
            raise ValueError("tray.rllib implements RLlib's new API stack only (RLModule, Learner, EnvRunner)")
        return self

    def resources(self, *, num_cpus_for_main_process: float = NotProvided,
                  num_gpus: int = NotProvided) -> AlgorithmConfig:
        if num_gpus is not NotProvided and num_gpus:
            raise ValueError("num_gpus > 0 is not supported: tray.rllib learns on CPU")
        return self._set(num_cpus_for_main_process=num_cpus_for_main_process)

    def evaluation(self, *, evaluation_interval: int | None = NotProvided, evaluation_duration: int = NotProvided,
                   evaluation_duration_unit: str = NotProvided, evaluation_num_env_runners: int = NotProvided,
                   evaluation_config: dict | None = NotProvided) -> AlgorithmConfig:
        if evaluation_config is not NotProvided and isinstance(evaluation_config, AlgorithmConfig):
            evaluation_config = evaluation_config.to_dict()
        return self._set(evaluation_interval=evaluation_interval, evaluation_duration=evaluation_duration,
                         evaluation_duration_unit=evaluation_duration_unit,
                         evaluation_num_env_runners=evaluation_num_env_runners,
                         evaluation_config=evaluation_config or {} if evaluation_config is not NotProvided
                         else NotProvided)

    def debugging(self, *, seed: int | None = NotProvided, log_level: str = NotProvided) -> AlgorithmConfig:
        return self._set(seed=seed, log_level=log_level)

    def reporting(self, *, metrics_num_episodes_for_smoothing: int = NotProvided,
                  min_time_s_per_iteration: float | None = NotProvided,
                  min_sample_timesteps_per_iteration: int = NotProvided) -> AlgorithmConfig:
        """An iteration (``train()``) runs training steps until both minimums are met (at least one step)."""
        return self._set(metrics_num_episodes_for_smoothing=metrics_num_episodes_for_smoothing,
                         min_time_s_per_iteration=min_time_s_per_iteration,
                         min_sample_timesteps_per_iteration=min_sample_timesteps_per_iteration)

    def fault_tolerance(self, *, restart_failed_env_runners: bool = NotProvided,
                        ignore_env_runner_failures: bool = NotProvided,
                        max_num_env_runner_restarts: int = NotProvided) -> AlgorithmConfig:
        return self._set(restart_failed_env_runners=restart_failed_env_runners,
                         ignore_env_runner_failures=ignore_env_runner_failures,
                         max_num_env_runner_restarts=max_num_env_runner_restarts)

    def _set(self, **values: Any) -> Self:
        for key, value in values.items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    # ----------------------------------------------------------------- dict form
    def _keys(self) -> list[str]:
        return [k for k in vars(self) if k != "algo_class"]

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (``lambda_`` appears as ``lambda``, as in Ray)."""
        out = {("lambda" if k == "lambda_" else k): copy.deepcopy(v) if k != "env" else v
               for k, v in vars(self).items() if k != "algo_class"}
        return out

    def update_from_dict(self, config: dict[str, Any]) -> AlgorithmConfig:
        """Apply a config dict (today's keys or the old ones: ``num_workers``, ``sgd_minibatch_size``, ...)."""
        config = dict(config)
        for key in ("framework", "framework_str"):
            if key in config:
                self.framework(config.pop(key))
        for key in ("enable_rl_module_and_learner", "enable_env_runner_and_connector_v2"):
            if key in config and not config.pop(key):
                self.api_stack(enable_rl_module_and_learner=False)
        config.pop("num_gpus", 0) and self.resources(num_gpus=1)
        translated, renamed = translate(config)
        if renamed:
            logger.info("old RLlib config keys mapped to today's names: %s", ", ".join(sorted(renamed)))
        known = set(self._keys())
        unknown = sorted(k for k in translated if k not in known)
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} keys {unknown}; "
                             f"known keys: {sorted(known - {'algo_class'})}")
        for key, value in translated.items():
            if key == "model_config":
                self.rl_module(model_config=value)
            elif key == "evaluation_config":
                self.evaluation(evaluation_config=value)
            else:
                setattr(self, key, copy.deepcopy(value) if key != "env" else value)
        return self

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> AlgorithmConfig:
        return cls().update_from_dict(config)

    def copy(self, copy_frozen: bool | None = None) -> AlgorithmConfig:
        new = copy.copy(self)
        for key, value in vars(self).items():
            if key not in ("env", "algo_class"):
                setattr(new, key, copy.deepcopy(value))
        return new

    def __getitem__(self, key: str) -> Any:  # old code reads config["lr"]
        translated, _ = translate({key: None})
        return getattr(self, next(iter(translated)))

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except AttributeError:
            return default

    def __repr__(self) -> str:
        return f"{type(self).__name__}(algo={getattr(self.algo_class, '__name__', None)}, env={self.env!r})"

    # ----------------------------------------------------------------- derived values
    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        if self.env is None:
            raise ValueError("no env set: config.environment('CartPole-v1') or config.environment(MyEnvClass)")
        for name in ("num_env_runners", "evaluation_num_env_runners"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0, got {getattr(self, name)!r}")
        for name in ("num_envs_per_env_runner", "train_batch_size_per_learner", "num_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.num_learners != 0:
            raise ValueError("num_learners must be 0: tray.rllib learns in the algorithm's own process")
        rfl = self.rollout_fragment_length
        if rfl != "auto" and (not isinstance(rfl, int) or rfl < 1):
            raise ValueError(f"rollout_fragment_length must be 'auto' or an int >= 1, got {rfl!r}")
        if self.num_cpus_per_env_runner is not None and self.num_cpus_per_env_runner < 0:
            raise ValueError(f"num_cpus_per_env_runner must be >= 0, got {self.num_cpus_per_env_runner}")
        if not (0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.evaluation_duration_unit not in ("episodes", "timesteps"):
            raise ValueError(f"evaluation_duration_unit must be 'episodes' or 'timesteps', "
                             f"got {self.evaluation_duration_unit!r}")
        extra = set(self.model_config) - MODEL_CONFIG_KEYS
        if extra:
            raise ValueError(f"model_config keys {sorted(extra)} are not supported; supported: "
                             f"{sorted(MODEL_CONFIG_KEYS)}")
        for key in ("fcnet_activation", "head_fcnet_activation"):
            if self.model_config.get(key) not in _ACTIVATIONS:
                raise ValueError(f"{key} must be one of {sorted(_ACTIVATIONS)}, got {self.model_config.get(key)!r}")

    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        """Steps per env per sample call: 'auto' splits one train batch over every env of every runner."""
        if self.rollout_fragment_length != "auto":
            return int(self.rollout_fragment_length)
        envs = max(1, self.num_env_runners) * self.num_envs_per_env_runner
        return max(1, math.ceil(self.train_batch_size_per_learner / envs))

    def cpus_per_env_runner(self, cluster_cpus: float, main_cpus: float) -> float:
        """What one env runner asks for. Set explicitly: that, and more runners than the cluster holds
        fail at once. Unset: 1 CPU as in Ray, or an equal share of what the cluster has beside the
        main process when that is less (4 runners on a 2-CPU machine sample at 0.25 CPU each)."""
        n = self.num_env_runners
        if self.num_cpus_per_env_runner is not None:
            need = main_cpus + n * self.num_cpus_per_env_runner
            if n and need > cluster_cpus + 1e-9:
                raise ValueError(
                    f"num_env_runners={n} x num_cpus_per_env_runner={self.num_cpus_per_env_runner} "
                    f"(+ {main_cpus} CPU for the main process) = {need:g} CPUs, but the cluster has "
                    f"{cluster_cpus:g} CPUs: lower num_env_runners or num_cpus_per_env_runner")
            return float(self.num_cpus_per_env_runner)
        if n == 0:
            return 0.0
        share = max(0.0, cluster_cpus - main_cpus) / n
        return float(min(1.0, math.floor(share * 100) / 100))

    def build_algo(self, env: Any = None) -> Any:
        """Make the Algorithm this config describes (``algo_class(config=self)``)."""
        if env is not None:
            self.env = env
        if self.algo_class is None:
            raise ValueError("this config has no algorithm class; use PPOConfig(), DQNConfig(), ...")
        algo_class = self.algo_class
        if isinstance(algo_class, str):
            module, _, name = algo_class.partition(":")
            algo_class = getattr(importlib.import_module(module), name)
        return algo_class(config=self.copy())

    build = build_algo
