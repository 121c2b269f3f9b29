"""APPO: asynchronous PPO (Ray's ``ray.rllib.algorithms.appo``): IMPALA's sampling and V-trace, a
clipped surrogate against a target policy, and a circular buffer that replays each train batch.

The loss follows APPO's: V-trace targets and advantages are computed for the *target* policy
(a copy of the module updated every ``target_network_update_freq * N * K *
train_batch_size_per_learner`` trained steps), the surrogate's ratio is that of the current policy
to the behaviour one, times the behaviour-to-target ratio clipped to ``[0, target_worker_clipping]``,
and an optional KL term toward the target policy adapts its coefficient toward ``kl_target``.
"""

from __future__ import annotations

import copy
from typing import Any

from ..algorithm_config import NotProvided
from ..impala.impala import IMPALA, IMPALAConfig
from .circular_buffer import CircularBuffer


class APPOConfig(IMPALAConfig):
    """APPO's settings, with Ray 2.60's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or APPO)
        self.clip_param = 0.4
        self.use_kl_loss = False
        self.kl_coeff = 1.0
        self.kl_target = 0.01
        self.target_worker_clipping = 2.0
        self.use_circular_buffer = True
        self.circular_buffer_num_batches = 8
        self.circular_buffer_iterations_per_batch = 2
        self.target_network_update_freq = 2
        self.tau = 1.0
        self.model_config["vf_share_layers"] = False  # Ray's APPO auto-includes it

    def training(self, *, clip_param: float = NotProvided, use_kl_loss: bool = NotProvided,
                 kl_coeff: float = NotProvided, kl_target: float = NotProvided,
                 target_worker_clipping: float = NotProvided, use_circular_buffer: bool = NotProvided,
                 circular_buffer_num_batches: int = NotProvided,
                 circular_buffer_iterations_per_batch: int = NotProvided,
                 target_network_update_freq: int = NotProvided, tau: float = NotProvided,
                 **kwargs: Any) -> APPOConfig:
        super().training(**kwargs)
        return self._set(clip_param=clip_param, use_kl_loss=use_kl_loss, kl_coeff=kl_coeff, kl_target=kl_target,
                         target_worker_clipping=target_worker_clipping, use_circular_buffer=use_circular_buffer,
                         circular_buffer_num_batches=circular_buffer_num_batches,
                         circular_buffer_iterations_per_batch=circular_buffer_iterations_per_batch,
                         target_network_update_freq=target_network_update_freq, tau=tau)

    def validate(self) -> None:
        super().validate()
        if not (0 < self.tau <= 1):
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.target_worker_clipping <= 0:
            raise ValueError(f"target_worker_clipping must be > 0, got {self.target_worker_clipping}")
        for name in ("circular_buffer_num_batches", "circular_buffer_iterations_per_batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")

    def target_update_steps(self) -> int:
        """Trained env steps between target-network updates (Ray's product of four settings)."""
        nk = self.circular_buffer_num_batches * self.circular_buffer_iterations_per_batch \
            if self.use_circular_buffer else 1
        return int(self.target_network_update_freq * nk * self.train_batch_size_per_learner)


class APPO(IMPALA):
    """Each new train batch enters the circular buffer; the learner then makes K updates on batches
    drawn from it (each batch is drawn at most K times), so a batch trains K times on average."""

    _config_class = APPOConfig

    def setup_learner(self, cfg: Any) -> None:
        super().setup_learner(cfg)
        self.target = copy.deepcopy(self.module)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.kl_coeff = float(cfg.kl_coeff)
        self.buffer = CircularBuffer(cfg.circular_buffer_num_batches, cfg.circular_buffer_iterations_per_batch,
                                     seed=cfg.seed) if cfg.use_circular_buffer else None
        self._trained_lifetime = 0
        self._last_target_update = 0
        self._num_target_updates = 0

    def learner_state(self) -> dict[str, Any]:
        return {**super().learner_state(), "target": self.target.get_state(), "kl_coeff": self.kl_coeff,
                "trained_lifetime": self._trained_lifetime, "last_target_update": self._last_target_update,
                "num_target_updates": self._num_target_updates}

    def set_learner_state(self, state: dict[str, Any]) -> None:
        super().set_learner_state(state)
        self.target.set_state(state["target"])
        self.kl_coeff = state["kl_coeff"]
        self._trained_lifetime = state["trained_lifetime"]
        self._last_target_update = state["last_target_update"]
        self._num_target_updates = state["num_target_updates"]

    def learn_on_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        if self.buffer is None:
            draws = [batch]
        else:
            self.buffer.add(batch)
            draws = [self.buffer.sample() for _ in range(min(cfg.circular_buffer_iterations_per_batch,
                                                                 len(self.buffer)))]
        stats: dict[str, Any] = {}
        for b in draws:
            stats = self._update(b)
            n = int(b["rewards"].size)
            self._trained_lifetime += n
            self._after_update(n)
            self._maybe_update_target(stats)
        stats["num_target_updates"] = self._num_target_updates
        stats["curr_kl_coeff"] = self.kl_coeff
        return stats

    def _maybe_update_target(self, stats: dict[str, Any]) -> None:
        torch = self._torch()
        cfg = self.config
        if self._trained_lifetime - self._last_target_update >= cfg.target_update_steps():
            with torch.no_grad():
                for t, p in zip(self.target.parameters(), self.module.parameters(), strict=True):
                    t.mul_(1.0 - cfg.tau).add_(cfg.tau * p)
            self._last_target_update = self._trained_lifetime
            self._num_target_updates += 1
        if cfg.use_kl_loss:  # adapt the KL coefficient toward kl_target, as PPO does
            if stats["mean_kl_loss"] > 2.0 * cfg.kl_target:
                self.kl_coeff *= 1.5
            elif stats["mean_kl_loss"] < 0.5 * cfg.kl_target:
                self.kl_coeff *= 0.5

    def _update(self, batch: dict[str, Any]) -> dict[str, Any]:
        torch = self._torch()
        cfg = self.config
        dist, values, target_logp, next_values, shape = self._forward_batch(batch)
        with torch.no_grad():
            old_inputs = self.target._forward({"obs": torch.from_numpy(batch["obs"].reshape(shape[0] * shape[1], -1))})
            old_dist = self.target.distribution(old_inputs["action_dist_inputs"])
            actions = torch.from_numpy(batch["actions"].reshape(shape[0] * shape[1], *batch["actions"].shape[2:]))
            old_logp = old_dist.log_prob(actions.long() if self.module.dist == "categorical" else actions)
        vs, pg_adv = self._vtrace(batch, old_logp, values, next_values, shape)
        behaviour_logp = torch.from_numpy(batch["action_logp"].reshape(-1))
        is_ratio = torch.clamp(torch.exp(behaviour_logp - old_logp), 0.0, cfg.target_worker_clipping)
        ratio = is_ratio * torch.exp(target_logp - behaviour_logp)
        surrogate = torch.minimum(pg_adv * ratio, pg_adv * torch.clamp(ratio, 1 - cfg.clip_param, 1 + cfg.clip_param))
        mean_pi_loss = -surrogate.mean()
        mean_vf_loss = 0.5 * (values - vs).pow(2).mean()
        entropy = dist.entropy().mean()
        total = mean_pi_loss + cfg.vf_loss_coeff * mean_vf_loss - cfg.entropy_coeff * entropy
        kl = torch.zeros(())
        if cfg.use_kl_loss:
            kl = torch.distributions.kl_divergence(old_dist, dist).mean()
            total = total + self.kl_coeff * kl
        norm = self._apply_grads(total)
        stats = {"policy_loss": float(mean_pi_loss.detach()), "vf_loss": float(mean_vf_loss.detach()),
                 "entropy": float(entropy.detach()), "mean_kl_loss": float(kl.detach()),
                 "total_loss": float(total.detach()), "mean_IS": float(is_ratio.mean()),
                 "var_IS": float(is_ratio.var(unbiased=False)), "num_module_steps_trained": int(values.numel()),
                 "curr_entropy_coeff": cfg.entropy_coeff, "weights_seq_no": self._weights_version,
                 "diff_num_grad_updates_vs_sampler_policy": float(batch.get("lag", 0.0))}
        if norm is not None:
            stats["gradients_default_optimizer_global_norm"] = norm
        return stats
