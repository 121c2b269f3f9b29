"""DQN: double, dueling Q-learning from a replay buffer with a target network (Ray 2.60's defaults)."""

from __future__ import annotations

import math
from typing import Any

from ...utils.n_step import NStepBuilder
from ...utils.replay_buffers import ReplayBuffer
from ..algorithm import Algorithm
from ..algorithm_config import AlgorithmConfig, NotProvided


def epsilon_at(schedule: list[tuple[int, float]] | float, step: int) -> float:
    """Piecewise-linear epsilon over lifetime env steps (Ray's ``epsilon=[(0, 1.0), (10000, 0.05)]``)."""
    if isinstance(schedule, (int, float)):
        return float(schedule)
    points = sorted((int(t), float(e)) for t, e in schedule)
    if step <= points[0][0]:
        return points[0][1]
    for (t0, e0), (t1, e1) in zip(points, points[1:], strict=False):
        if step <= t1:
            return e0 + (e1 - e0) * (step - t0) / max(1, t1 - t0)
    return points[-1][1]


class DQNConfig(AlgorithmConfig):
    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or DQN)
        self.lr = 5e-4
        self.train_batch_size_per_learner = 32
        self.rollout_fragment_length = 4
        self.replay_buffer_config: dict[str, Any] = {"capacity": 50_000}
        self.num_steps_sampled_before_learning_starts = 1000
        self.target_network_update_freq = 500
        self.epsilon: list[tuple[int, float]] | float = [(0, 1.0), (10_000, 0.05)]
        self.double_q = True
        self.dueling = True
        self.tau = 1.0
        self.training_intensity: float | None = None
        self.td_error_loss_fn = "huber"
        self.n_step: int | tuple[int, int] = 1
        self.min_sample_timesteps_per_iteration = 1000
        self.grad_clip = 40.0

    def training(self, *, replay_buffer_config: dict = NotProvided,
                 num_steps_sampled_before_learning_starts: int = NotProvided,
                 target_network_update_freq: int = NotProvided, epsilon: Any = NotProvided,
                 double_q: bool = NotProvided, dueling: bool = NotProvided, tau: float = NotProvided,
                 training_intensity: float | None = NotProvided, td_error_loss_fn: str = NotProvided,
                 n_step: int | tuple[int, int] = NotProvided, **kwargs: Any) -> DQNConfig:
        super().training(**kwargs)
        if replay_buffer_config is not NotProvided:
            extra = set(replay_buffer_config) - {"capacity", "type"}
            if extra or replay_buffer_config.get("type", "EpisodeReplayBuffer") not in (
                    "EpisodeReplayBuffer", "ReplayBuffer"):
                raise ValueError(f"replay_buffer_config supports 'capacity' (uniform replay) only, got "
                                 f"{replay_buffer_config}")
            replay_buffer_config = {"capacity": int(replay_buffer_config.get("capacity", 50_000))}
        return self._set(replay_buffer_config=replay_buffer_config,
                         num_steps_sampled_before_learning_starts=num_steps_sampled_before_learning_starts,
                         target_network_update_freq=target_network_update_freq, epsilon=epsilon, double_q=double_q,
                         dueling=dueling, tau=tau, training_intensity=training_intensity,
                         td_error_loss_fn=td_error_loss_fn,
                         n_step=tuple(n_step) if isinstance(n_step, list) else n_step)

    def validate(self) -> None:
        super().validate()
        if self.td_error_loss_fn not in ("huber", "mse"):
            raise ValueError(f"td_error_loss_fn must be 'huber' or 'mse', got {self.td_error_loss_fn!r}")
        if not (0 < self.tau <= 1):
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        lo, hi = self.n_step_range()
        if not (1 <= lo <= hi):
            raise ValueError(f"n_step must be an int >= 1 or a (min, max) pair with 1 <= min <= max, "
                             f"got {self.n_step!r}")

    def n_step_range(self) -> tuple[int, int]:
        """``n_step`` as ``(min, max)``; a pair means n is drawn uniformly from it for each fragment."""
        if isinstance(self.n_step, (tuple, list)) and len(self.n_step) == 2:
            return int(self.n_step[0]), int(self.n_step[1])
        if isinstance(self.n_step, int):
            return self.n_step, self.n_step
        return 0, -1


class DQN(Algorithm):
    """Each training step samples a fragment per env, stores it, and runs Q-updates from replay."""

    _config_class = DQNConfig

    def _build_module(self, cfg: Any) -> Any:
        from ...core.rl_module.torch_rl_module import QModule

        return QModule(self.observation_space, self.action_space, cfg.model_config, dueling=cfg.dueling)

    def setup_learner(self, cfg: Any) -> None:
        import copy

        super().setup_learner(cfg)
        self.target = copy.deepcopy(self.module)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.buffer = ReplayBuffer(cfg.replay_buffer_config["capacity"], seed=cfg.seed)
        self.n_step_builder = NStepBuilder(cfg.gamma)
        self._last_target_update = 0
        self._num_target_updates = 0
        self._stats: dict[str, float] = {}

    def exploration_epsilon(self) -> float:
        return epsilon_at(self.config.epsilon, self._counters["env_steps_lifetime"])

    def learner_state(self) -> dict[str, Any]:
        return {"target": self.target.get_state(), "buffer": self.buffer.get_state(),
                "n_step": self.n_step_builder.get_state(),
                "last_target_update": self._last_target_update, "num_target_updates": self._num_target_updates}

    def set_learner_state(self, state: dict[str, Any]) -> None:
        self.target.set_state(state["target"])
        self.buffer.set_state(state["buffer"])
        self.n_step_builder.set_state(state["n_step"])
        self._last_target_update = state["last_target_update"]
        self._num_target_updates = state["num_target_updates"]

    def training_step(self) -> dict[str, Any]:
        torch = self._torch()
        cfg = self.config
        lifetime = self._counters["env_steps_lifetime"] + self._counters["env_steps_iter"]
        eps = epsilon_at(cfg.epsilon, lifetime)
        batches = self.env_runner_group.sample(1, explore=cfg.explore, epsilon=eps)
        sampled = self._record_samples(batches)
        lo, hi = cfg.n_step_range()
        for b in batches:  # n-step windows may span fragments: each runner is a stream
            n = lo if lo == hi else int(self.rng.integers(lo, hi + 1))
            self.buffer.add(self.n_step_builder.add_fragment(b["worker_index"], b, n))
        lifetime += sampled
        if len(self.buffer) < cfg.num_steps_sampled_before_learning_starts:
            return {"epsilon": eps}
        updates = 1 if cfg.training_intensity is None else max(
            1, math.ceil(sampled * cfg.training_intensity / cfg.train_batch_size_per_learner))
        for _ in range(updates):
            s = self.buffer.sample(cfg.train_batch_size_per_learner)
            obs, next_obs = torch.from_numpy(s["obs"]), torch.from_numpy(s["next_obs"])
            actions = torch.from_numpy(s["actions"]).long()
            rewards, term = torch.from_numpy(s["rewards"]), torch.from_numpy(s["terminateds"]).float()
            discounts = torch.from_numpy(s["discounts"])  # gamma^k of each transition's k steps
            with torch.no_grad():
                q_next_target = self.target.q_values(next_obs)
                if cfg.double_q:
                    best = self.module.q_values(next_obs).argmax(-1, keepdim=True)
                    q_next = q_next_target.gather(-1, best).squeeze(-1)
                else:
                    q_next = q_next_target.max(-1).values
                y = rewards + discounts * (1.0 - term) * q_next
            q = self.module.q_values(obs).gather(-1, actions[:, None]).squeeze(-1)
            td = q - y
            loss = torch.nn.functional.smooth_l1_loss(q, y) if cfg.td_error_loss_fn == "huber" else td.pow(2).mean()
            self._apply_grads(loss)
            self._counters["trained_iter"] += cfg.train_batch_size_per_learner
            self._stats = {"qf_loss": float(loss.detach()), "qf_mean": float(q.detach().mean()),
                           "td_error_mean": float(td.detach().mean()), "epsilon": eps}
        if lifetime - self._last_target_update >= cfg.target_network_update_freq:
            with torch.no_grad():
                for t, p in zip(self.target.parameters(), self.module.parameters(), strict=False):
                    t.mul_(1.0 - cfg.tau).add_(cfg.tau * p)
            self._last_target_update = lifetime
            self._num_target_updates += 1
        self._stats["num_target_updates"] = self._num_target_updates
        self._sync_weights()
        return dict(self._stats)
