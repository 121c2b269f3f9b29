"""IMPALA: asynchronous actor-learner training with V-trace (Ray's ``ray.rllib.algorithms.impala``).

Env runners sample continuously, one call in flight each; the learner takes fragments as they
arrive, learns on every ``train_batch_size_per_learner`` env steps gathered, and puts its weights
once every ``broadcast_interval`` updates. The runners' next calls carry the newest weights ref,
so samples lag the learner by about one update, which V-trace corrects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..algorithm import Algorithm
from ..algorithm_config import AlgorithmConfig, NotProvided
from .vtrace import vtrace


class IMPALAConfig(AlgorithmConfig):
    """IMPALA's settings, with Ray 2.60's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or IMPALA)
        self.vtrace = True
        self.vtrace_clip_rho_threshold = 1.0
        self.vtrace_clip_pg_rho_threshold = 1.0
        self.broadcast_interval = 1
        self.grad_clip = 40.0
        self.vf_loss_coeff = 0.5
        self.entropy_coeff = 0.01
        self.rollout_fragment_length = 50
        self.train_batch_size_per_learner = 500
        self.num_env_runners = 2
        self.lr = 5e-4
        self.min_time_s_per_iteration = 10

    def training(self, *, vtrace: bool = NotProvided, vtrace_clip_rho_threshold: float = NotProvided,
                 vtrace_clip_pg_rho_threshold: float = NotProvided, broadcast_interval: int = NotProvided,
                 vf_loss_coeff: float = NotProvided, entropy_coeff: float = NotProvided,
                 **kwargs: Any) -> IMPALAConfig:
        super().training(**kwargs)
        return self._set(vtrace=vtrace, vtrace_clip_rho_threshold=vtrace_clip_rho_threshold,
                         vtrace_clip_pg_rho_threshold=vtrace_clip_pg_rho_threshold,
                         broadcast_interval=broadcast_interval, vf_loss_coeff=vf_loss_coeff,
                         entropy_coeff=entropy_coeff)

    def validate(self) -> None:
        super().validate()
        if not self.vtrace:
            raise ValueError("IMPALA and APPO support vtrace=True only (as Ray 2.60's new API stack)")
        if not isinstance(self.broadcast_interval, int) or self.broadcast_interval < 1:
            raise ValueError(f"broadcast_interval must be an int >= 1, got {self.broadcast_interval!r}")
        if self.minibatch_size is not None or self.num_epochs != 1:
            raise ValueError("IMPALA learns once on each train batch: minibatch_size must be None and num_epochs 1")


class IMPALA(Algorithm):
    """Learns from fragments as the env runners deliver them (see the module docstring)."""

    _config_class = IMPALAConfig

    def setup_learner(self, cfg: Any) -> None:
        super().setup_learner(cfg)
        self._pending: list[dict[str, Any]] = []
        self._pending_steps = 0
        self._num_updates = 0
        self._updates_since_broadcast = 0

    def training_step(self) -> dict[str, Any]:
        cfg = self.config
        batches = self.env_runner_group.sample_async(explore=cfg.explore)
        self._record_samples(batches)
        stats: dict[str, Any] = {}
        for b in batches:
            self._pending.append(b)
            self._pending_steps += b["env_steps"]
            if self._pending_steps >= cfg.train_batch_size_per_learner:
                train_batch = _concat(self._pending)
                # how many weight broadcasts the samples lag the learner by (0 would be synchronous)
                train_batch["lag"] = np.float64(np.mean([self._weights_version - p["weights_seq_no"]
                                                         for p in self._pending]))
                self._pending, self._pending_steps = [], 0
                stats = self.learn_on_batch(train_batch)
        return stats

    def learn_on_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Update on one train batch; broadcast when due. (APPO replays batches from its buffer here.)"""
        stats = self._update(batch)
        self._after_update(int(batch["rewards"].size))
        return stats

    def _after_update(self, steps: int) -> None:
        self._counters["trained_iter"] += steps
        self._num_updates += 1
        self._updates_since_broadcast += 1
        if self._updates_since_broadcast >= self.config.broadcast_interval:
            self._updates_since_broadcast = 0
            self._sync_weights()

    def _forward_batch(self, batch: dict[str, Any]) -> tuple[Any, Any, Any, Any, tuple[int, int]]:
        """``(dist, values, target log-probs, next values (no grad), (T, N))`` for a time-major batch."""
        torch = self._torch()
        T, N = batch["rewards"].shape
        obs = torch.from_numpy(batch["obs"].reshape(T * N, -1))
        actions = torch.from_numpy(batch["actions"].reshape(T * N, *batch["actions"].shape[2:]))
        if self.module.dist == "categorical":
            actions = actions.long()
        out = self.module._forward({"obs": obs})
        dist = self.module.distribution(out["action_dist_inputs"])
        with torch.no_grad():
            next_values = self.module.compute_values(torch.from_numpy(batch["next_obs"].reshape(T * N, -1)))
        return dist, out["vf_preds"], dist.log_prob(actions), next_values, (T, N)

    def _vtrace(self, batch: dict[str, Any], target_logp: Any, values: Any, next_values: Any,
                shape: tuple[int, int]) -> tuple[Any, Any]:
        torch = self._torch()
        cfg = self.config
        vs, pg_adv = vtrace(batch["action_logp"], target_logp.detach().numpy().reshape(shape), batch["rewards"],
                            values.detach().numpy().reshape(shape), next_values.numpy().reshape(shape),
                            batch["terminateds"], batch["truncateds"], cfg.gamma, cfg.vtrace_clip_rho_threshold,
                            cfg.vtrace_clip_pg_rho_threshold)
        return torch.from_numpy(vs.reshape(-1)), torch.from_numpy(pg_adv.reshape(-1))

    def _update(self, batch: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        dist, values, target_logp, next_values, shape = self._forward_batch(batch)
        vs, pg_adv = self._vtrace(batch, target_logp, values, next_values, shape)
        mean_pi_loss = -(target_logp * pg_adv).mean()
        mean_vf_loss = 0.5 * (values - vs).pow(2).mean()
        entropy = dist.entropy().mean()
        total = mean_pi_loss + cfg.vf_loss_coeff * mean_vf_loss - cfg.entropy_coeff * entropy
        norm = self._apply_grads(total)
        n = int(batch["rewards"].size)
        stats = {"mean_pi_loss": float(mean_pi_loss.detach()), "pi_loss": float(mean_pi_loss.detach()) * n,
                 "mean_vf_loss": float(mean_vf_loss.detach()), "vf_loss": float(mean_vf_loss.detach()) * n,
                 "entropy": float(entropy.detach()), "total_loss": float(total.detach()),
                 "num_module_steps_trained": n, "curr_entropy_coeff": cfg.entropy_coeff,
                 "weights_seq_no": self._weights_version,
                 "diff_num_grad_updates_vs_sampler_policy": float(batch.get("lag", 0.0))}
        if norm is not None:
            stats["gradients_default_optimizer_global_norm"] = norm
        return stats

    def learner_state(self) -> dict[str, Any]:
        return {"num_updates": self._num_updates}

    def set_learner_state(self, state: dict[str, Any]) -> None:
        self._num_updates = state["num_updates"]


def _concat(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Fragments of equal length side by side: ``[T, sum of num_envs, ...]``."""
    keys = ("obs", "next_obs", "actions", "rewards", "terminateds", "truncateds", "action_logp")
    if len(batches) == 1:
        return {k: batches[0][k] for k in keys}
    return {k: np.concatenate([b[k] for b in batches], axis=1) for k in keys}
