"""Algorithm: an RL algorithm as a Tune Trainable (Ray's ``ray.rllib.algorithms.Algorithm``).

``setup`` builds the env runner group, the torch RLModule and the learner state; ``step`` runs
``training_step`` (the subclass's one round of sampling and learning) until the iteration's
minimum time/steps are met, evaluates when due, and reports Ray's result keys
(``env_runners/episode_return_mean``, ``learners/default_policy/...``, ...).
"""

from __future__ import annotations

import collections
import importlib
import logging
import os
import time
import warnings
from typing import Any

import cloudpickle
import numpy as np

import tray
from tray.tune import PlacementGroupFactory, Trainable

from ..env.env_context import EnvContext, EnvCreator
from ..env.env_runner_group import EnvRunnerGroup
from ..env.registry import flush as flush_env_registry
from ..env.single_agent_env_runner import RunnerSpec
from .algorithm_config import AlgorithmConfig

logger = logging.getLogger("tray.rllib")

DEFAULT_MODULE_ID = "default_policy"
ALL_MODULES = "__all_modules__"
_STATE_FILE = "algorithm_state.pkl"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _cluster_cpus() -> float:
    return float(tray.cluster_resources().get("CPU", 0.0))


def _in_driver() -> bool:
    from tray import lowlevel

    return lowlevel.runtime_info().is_driver


class Algorithm(Trainable):
    """Base of PPO, DQN, IMPALA and APPO. Build one with ``SomeConfig().environment(...).build_algo()``."""

    _config_class: type[AlgorithmConfig] = AlgorithmConfig
    config: Any  # after setup: the algorithm's AlgorithmConfig subclass (Tune's Trainable types it a dict)

    def __init__(self, config: AlgorithmConfig | dict | None = None, env: Any = None, logger_creator: Any = None,
                 **kwargs: Any) -> None:
        if isinstance(config, AlgorithmConfig):
            config = config.to_dict()
        config = dict(config or {})
        if env is not None:
            config["env"] = env
        super().__init__(config=config, logger_creator=logger_creator, **kwargs)

    @classmethod
    def get_default_config(cls) -> AlgorithmConfig:
        return cls._config_class(algo_class=cls)

    @classmethod
    def _to_config(cls, config: AlgorithmConfig | dict | None) -> AlgorithmConfig:
        if isinstance(config, AlgorithmConfig):
            return config.copy()
        return cls.get_default_config().update_from_dict(dict(config or {}))

    # ------------------------------------------------------------------ resources (Tune)
    @classmethod
    def _runner_cpus(cls, cfg: AlgorithmConfig, in_driver: bool) -> tuple[float, float]:
        """``(CPUs of the main process, CPUs per env runner)``: see AlgorithmConfig.cpus_per_env_runner."""
        main = 0.0 if in_driver else float(cfg.num_cpus_for_main_process)
        if cfg.num_env_runners == 0:
            return main, 0.0
        return main, cfg.cpus_per_env_runner(_cluster_cpus(), main)

    @classmethod
    def default_resource_request(cls, config: AlgorithmConfig | dict) -> PlacementGroupFactory:
        """The trial's CPUs: the learner's and every env runner's, in one bundle the trial holds.

        (Ray asks one bundle per runner; here the trial actor reserves its runners' share itself
        and starts them with 0 CPUs, so Tune never runs more trials than the runners fit.)
        """
        cfg = cls._to_config(config)
        flush_env_registry()
        main, per = cls._runner_cpus(cfg, in_driver=False)
        return PlacementGroupFactory([{"CPU": main + per * cfg.num_env_runners}])

    # ------------------------------------------------------------------ setup
    def setup(self, config: dict[str, Any]) -> None:
        cfg = self._to_config(config)
        cfg.validate()
        self.config = cfg
        logger.setLevel(getattr(logging, str(cfg.log_level).upper(), logging.WARNING))
        torch = self._torch()
        torch.set_num_threads(max(1, int(cfg.num_cpus_for_main_process)))  # a small MLP learns best on one
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
            np.random.seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        if cfg.num_env_runners or cfg.evaluation_num_env_runners:
            flush_env_registry()
        self.creator = EnvCreator(cfg.env)
        self.runner_spec = self._runner_spec(cfg)
        self.env_runner_group = self._make_group(cfg, self.runner_spec, cfg.num_env_runners, "env runner")
        probe = self.creator(EnvContext(cfg.env_config, 0, cfg.num_env_runners))
        try:
            self.observation_space, self.action_space = probe.observation_space, probe.action_space
        finally:
            probe.close()
        self.module = self._build_module(cfg)
        self.eval_env_runner_group: EnvRunnerGroup | None = None
        # The episodes completed in this iteration (the last metrics_num_episodes_for_smoothing
        # of them): Ray 2.60's env-runner metrics are windows cleared at every reduce, so
        # episode_return_mean describes this iteration's policy, not a lagging 100-episode tail.
        self._episodes: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=cfg.metrics_num_episodes_for_smoothing)
        self._counters: collections.Counter[str] = collections.Counter()
        self._weights_version = 0
        self._warned_single_action = False
        self.setup_learner(cfg)
        self._sync_weights()

    @staticmethod
    def _torch() -> Any:
        from tray import lowlevel

        return lowlevel.require("torch", "rllib")

    def _runner_spec(self, cfg: AlgorithmConfig) -> RunnerSpec:
        return RunnerSpec(creator=self.creator, env_config=dict(cfg.env_config),
                          num_envs=cfg.num_envs_per_env_runner, fragment=cfg.get_rollout_fragment_length(),
                          seed=cfg.seed, num_workers=cfg.num_env_runners, clip_actions=cfg.clip_actions)

    def _make_group(self, cfg: AlgorithmConfig, spec: RunnerSpec, n: int, what: str) -> EnvRunnerGroup:
        per = 0.0
        if n:
            in_driver = _in_driver()
            _, per = self._runner_cpus(cfg.copy()._set(num_env_runners=n), in_driver)
            if what == "env runner" and not in_driver and self.trial_resources is not None:
                per = 0.0  # a Tune trial: default_resource_request reserved the runners' CPUs with the trial's
        return EnvRunnerGroup(spec, n, per, restart_failed=cfg.restart_failed_env_runners,
                              ignore_failures=cfg.ignore_env_runner_failures,
                              max_restarts=cfg.max_num_env_runner_restarts,
                              sample_timeout_s=cfg.sample_timeout_s, what=what)

    # ------------------------------------------------------------------ subclass hooks
    def _build_module(self, cfg: Any) -> Any:
        from ..core.rl_module.torch_rl_module import ActorCriticModule

        return ActorCriticModule(self.observation_space, self.action_space, cfg.model_config)

    def setup_learner(self, cfg: Any) -> None:
        """Make the optimizer and whatever else learning needs (subclasses)."""
        from ..core.learner.adam import Adam

        self.optimizer = Adam(self.module.parameters(), lr=cfg.lr)

    def training_step(self) -> dict[str, Any]:
        """One round of sampling and learning; returns the learner's stats for the default module."""
        raise NotImplementedError

    def exploration_epsilon(self) -> float:
        """Epsilon-greedy's epsilon now (Q-learning algorithms); 0 for a stochastic policy."""
        return 0.0

    def learner_state(self) -> dict[str, Any]:
        """What a checkpoint keeps beyond the module and the optimizer (subclasses)."""
        return {}

    def set_learner_state(self, state: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ helpers for subclasses
    def _sync_weights(self) -> None:
        self._weights_version += 1
        self.env_runner_group.sync_weights(self.module.numpy_weights(), self._weights_version)

    def _record_samples(self, batches: list[dict[str, Any]]) -> int:
        steps = 0
        for b in batches:
            steps += b["env_steps"]
            self._episodes.extend(b["episodes"])
            self._counters["episodes_iter"] += len(b["episodes"])
        self._counters["env_steps_iter"] += steps
        return steps

    def _apply_grads(self, loss: Any) -> float | None:
        torch = self._torch()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = None
        if self.config.grad_clip is not None:
            grads = [p.grad for p in self.module.parameters() if p.grad is not None]
            norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
            if norm > self.config.grad_clip:
                for g in grads:
                    g.mul_(self.config.grad_clip / (norm + 1e-6))
        self.optimizer.step()
        return norm

    # ------------------------------------------------------------------ one iteration
    def step(self) -> dict[str, Any]:
        cfg = self.config
        start = time.perf_counter()
        self._counters["env_steps_iter"] = 0
        self._counters["episodes_iter"] = 0
        self._counters["trained_iter"] = 0
        self._episodes.clear()
        calls = 0
        stats: dict[str, Any] = {}
        min_time = cfg.min_time_s_per_iteration or 0
        min_steps = cfg.min_sample_timesteps_per_iteration or 0
        while True:
            stats = self.training_step() or stats
            calls += 1
            if time.perf_counter() - start >= min_time and self._counters["env_steps_iter"] >= min_steps:
                break
        sampled = self._counters["env_steps_iter"]
        self._counters["env_steps_lifetime"] += sampled
        self._counters["episodes_lifetime"] += self._counters["episodes_iter"]
        self._counters["trained_lifetime"] += self._counters["trained_iter"]
        result: dict[str, Any] = {
            "env_runners": {
                **self._episode_stats(list(self._episodes)),
                "num_episodes": self._counters["episodes_iter"],
                "num_episodes_lifetime": self._counters["episodes_lifetime"],
                "num_env_steps_sampled": sampled,
                "num_env_steps_sampled_lifetime": self._counters["env_steps_lifetime"],
            },
            "learners": {
                DEFAULT_MODULE_ID: stats,
                ALL_MODULES: {"num_env_steps_trained": self._counters["trained_iter"],
                              "num_env_steps_trained_lifetime": self._counters["trained_lifetime"]},
            },
            "fault_tolerance": {"num_healthy_workers": self.env_runner_group.num_healthy,
                                "num_remote_worker_restarts": self.env_runner_group.num_restarts},
            "num_env_steps_sampled_lifetime": self._counters["env_steps_lifetime"],
            "num_episodes_lifetime": self._counters["episodes_lifetime"],
            "num_training_step_calls_per_iteration": calls,
            "timesteps_this_iter": sampled,
            "episodes_this_iter": self._counters["episodes_iter"],
            "config": cfg.to_dict(),
        }
        if cfg.evaluation_interval and (self.iteration + 1) % cfg.evaluation_interval == 0:
            result["evaluation"] = self.evaluate()
        return result

    @staticmethod
    def _episode_stats(episodes: list[tuple[float, int]]) -> dict[str, float]:
        if not episodes:
            nan = float("nan")
            return {"episode_return_mean": nan, "episode_return_max": nan, "episode_return_min": nan,
                    "episode_len_mean": nan}
        returns = [r for r, _ in episodes]
        return {"episode_return_mean": float(np.mean(returns)), "episode_return_max": float(max(returns)),
                "episode_return_min": float(min(returns)),
                "episode_len_mean": float(np.mean([n for _, n in episodes]))}

    # ------------------------------------------------------------------ evaluation and inference
    def evaluate(self) -> dict[str, Any]:
        """Run ``evaluation_duration`` episodes (or timesteps) with the current weights; Ray's keys."""
        cfg = self.config
        eval_cfg = cfg.copy().update_from_dict(dict(cfg.evaluation_config))
        if self.eval_env_runner_group is None:
            spec = self._runner_spec(eval_cfg)
            self.eval_env_runner_group = self._make_group(eval_cfg, spec, eval_cfg.evaluation_num_env_runners,
                                                          "evaluation env runner")
        group = self.eval_env_runner_group
        group.sync_weights(self.module.numpy_weights(), self._weights_version)
        start = time.perf_counter()
        if cfg.evaluation_duration_unit == "episodes":
            episodes = group.sample_episodes(cfg.evaluation_duration, explore=eval_cfg.explore)
            steps = sum(n for _, n in episodes)
        else:
            batches = group.sample(cfg.evaluation_duration, explore=eval_cfg.explore)
            episodes = [ep for b in batches for ep in b["episodes"]]
            steps = sum(b["env_steps"] for b in batches)
        return {"env_runners": {**self._episode_stats(episodes), "num_episodes": len(episodes),
                                "num_env_steps_sampled": steps},
                "evaluation_time_s": time.perf_counter() - start}

    def get_module(self, module_id: str = DEFAULT_MODULE_ID) -> Any:
        """The torch RLModule (``forward_inference({"obs": tensor})``)."""
        if module_id != DEFAULT_MODULE_ID:
            raise KeyError(f"no module {module_id!r}: this algorithm has one, {DEFAULT_MODULE_ID!r}")
        return self.module

    def compute_single_action(self, observation: Any = None, state: list | None = None, *,
                              input_dict: dict | None = None, policy_id: str = DEFAULT_MODULE_ID,
                              full_fetch: bool = False, explore: bool | None = None,
                              unsquash_action: bool | None = None, clip_action: bool | None = None) -> Any:
        """The action the current policy takes for one observation (Ray 2.60 keeps this deprecated
        method: prefer ``get_module().forward_inference({"obs": batch})``).

        ``explore`` None follows ``config.explore`` (sampling, by default), False acts greedily. A Box
        action is mapped onto the env's bounds (``unsquash_action``, default True) or clipped to them
        (``clip_action``, default ``config.clip_actions``), as the env runners do. ``full_fetch`` returns
        ``(action, [], {"action_dist_inputs": ..., "action_logp": ...})``.
        """
        from ..core.rl_module.numpy_policy import NumpyPolicy
        from ..env.single_agent_env_runner import _flatten_obs, to_env_action

        if not self._warned_single_action:
            self._warned_single_action = True
            warnings.warn("Algorithm.compute_single_action is deprecated (as in Ray 2.60): use "
                          "algo.get_module().forward_inference({'obs': obs_batch})", DeprecationWarning, stacklevel=2)
        if state:
            raise ValueError("compute_single_action: state is for recurrent modules, which tray.rllib does not have")
        self.get_module(policy_id)  # a KeyError naming an unknown module
        if input_dict is not None:
            if observation is not None:
                raise ValueError("compute_single_action: give either observation or input_dict, not both")
            observation = input_dict["obs"]
        if observation is None:
            raise ValueError("compute_single_action needs an observation (or input_dict={'obs': ...})")
        _, flat = _flatten_obs(self.observation_space)
        policy = NumpyPolicy(self.module.numpy_weights())
        obs = flat(observation)[None]
        explore = self.config.explore if explore is None else explore
        actions, logp = policy.act_batch(obs, self.rng, bool(explore), self.exploration_epsilon())
        clip = self.config.clip_actions if clip_action is None else clip_action
        action = to_env_action(actions[0], self.action_space, clip, normalize=unsquash_action is not False)
        if not full_fetch:
            return action
        extra = {"action_dist_inputs": policy.pi(obs)[0] if policy.dist != "q" else policy.q_values(obs)[0],
                 "action_logp": float(logp[0])}
        return action, [], extra

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {
            "algo_class": _class_path(type(self)),
            "config": self.config.to_dict(),
            "module": self.module.get_state(),
            "optimizer": self.optimizer.state_dict(),
            "counters": dict(self._counters),
            "learner": self.learner_state(),
        }
        with open(os.path.join(checkpoint_dir, _STATE_FILE), "wb") as f:
            cloudpickle.dump(state, f)

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        state = self._read_state(checkpoint) if isinstance(checkpoint, str) else checkpoint
        self.module.set_state(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._counters = collections.Counter(state["counters"])
        self.set_learner_state(state["learner"])
        self._sync_weights()

    @staticmethod
    def _read_state(path: str) -> dict[str, Any]:
        file = os.path.join(path, _STATE_FILE)
        if not os.path.exists(file):
            raise FileNotFoundError(f"{path} is not an RLlib checkpoint: it has no {_STATE_FILE}")
        with open(file, "rb") as f:
            return cloudpickle.load(f)

    def save_to_path(self, path: str | None = None) -> str:
        return self.save(path).checkpoint.path

    @classmethod
    def from_checkpoint(cls, path: Any, **_: Any) -> Algorithm:
        """A new algorithm of the checkpoint's class and config, in the checkpoint's state."""
        path = getattr(getattr(path, "checkpoint", path), "path", path)
        state = cls._read_state(os.fspath(path))
        algo_class = _import(state["algo_class"])
        algo = algo_class(config=state["config"])
        algo.restore(os.fspath(path))
        return algo

    # ------------------------------------------------------------------ lifecycle
    def cleanup(self) -> None:
        for group in (getattr(self, "env_runner_group", None), getattr(self, "eval_env_runner_group", None)):
            if group is not None:
                group.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.creator.name if hasattr(self, 'creator') else None})"

