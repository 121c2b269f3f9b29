"""PPO: proximal policy optimization (Ray's ``ray.rllib.algorithms.ppo``), synchronous sampling."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...utils.postprocessing import compute_gae
from ..algorithm import Algorithm
from ..algorithm_config import AlgorithmConfig, NotProvided


class PPOConfig(AlgorithmConfig):
    """PPO's settings, with Ray 2.60's defaults."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or PPO)
        self.lr = 5e-5
        self.train_batch_size_per_learner = 4000
        self.minibatch_size = 128
        self.num_epochs = 30
        self.lambda_ = 1.0
        self.use_gae = True
        self.use_critic = True
        self.clip_param = 0.3
        self.vf_clip_param = 10.0
        self.vf_loss_coeff = 1.0
        self.entropy_coeff = 0.0
        self.use_kl_loss = True
        self.kl_coeff = 0.2
        self.kl_target = 0.01
        self.model_config["vf_share_layers"] = False  # Ray's PPO auto-includes it: separate pi and vf nets

    def training(self, *, lambda_: float = NotProvided, use_gae: bool = NotProvided, use_critic: bool = NotProvided,
                 clip_param: float = NotProvided, vf_clip_param: float = NotProvided,
                 vf_loss_coeff: float = NotProvided, entropy_coeff: float = NotProvided,
                 use_kl_loss: bool = NotProvided, kl_coeff: float = NotProvided, kl_target: float = NotProvided,
                 **kwargs: Any) -> PPOConfig:
        super().training(**kwargs)
        return self._set(lambda_=lambda_, use_gae=use_gae, use_critic=use_critic, clip_param=clip_param,
                         vf_clip_param=vf_clip_param, vf_loss_coeff=vf_loss_coeff, entropy_coeff=entropy_coeff,
                         use_kl_loss=use_kl_loss, kl_coeff=kl_coeff, kl_target=kl_target)

    def validate(self) -> None:
        super().validate()
        if self.minibatch_size is not None and self.minibatch_size > self.train_batch_size_per_learner:
            raise ValueError(f"minibatch_size ({self.minibatch_size}) must be <= train_batch_size_per_learner "
                             f"({self.train_batch_size_per_learner})")
        if not self.use_critic and self.use_gae:
            raise ValueError("use_gae=True needs use_critic=True (GAE bootstraps from the value function)")


class PPO(Algorithm):
    """Samples a train batch from every env runner, then runs ``num_epochs`` of clipped-surrogate SGD."""

    _config_class = PPOConfig

    def setup_learner(self, cfg: Any) -> None:
        super().setup_learner(cfg)
        self.kl_coeff = float(cfg.kl_coeff)

    def learner_state(self) -> dict[str, Any]:
        return {"kl_coeff": self.kl_coeff}

    def set_learner_state(self, state: dict[str, Any]) -> None:
        self.kl_coeff = state["kl_coeff"]

    def _postprocess(self, batches: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        torch = self._torch()
        cfg = self.config
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "logp", "adv", "targets")}
        for b in batches:
            T, N = b["rewards"].shape
            with torch.no_grad():
                both = torch.from_numpy(np.concatenate([b["obs"], b["next_obs"]]).reshape(2 * T * N, -1))
                v = self.module.compute_values(both).numpy().reshape(2, T, N)
            if not cfg.use_critic:
                v[:] = 0.0
            if cfg.use_gae:
                adv, targets = compute_gae(b["rewards"], v[0], v[1], b["terminateds"], b["truncateds"],
                                           cfg.gamma, cfg.lambda_)
            else:  # plain discounted returns (lambda 1, no baseline in the advantage)
                ret, _ = compute_gae(b["rewards"], np.zeros_like(v[0]), v[1], b["terminateds"], b["truncateds"],
                                     cfg.gamma, 1.0)
                adv, targets = ret - v[0], ret
            cols["obs"].append(b["obs"].reshape(T * N, -1))
            cols["actions"].append(b["actions"].reshape(T * N, *b["actions"].shape[2:]))
            cols["logp"].append(b["action_logp"].reshape(-1))
            cols["adv"].append(adv.reshape(-1))
            cols["targets"].append(targets.reshape(-1))
        return {k: np.concatenate(v) for k, v in cols.items()}

    def training_step(self) -> dict[str, Any]:
        torch = self._torch()
        cfg = self.config
        batches = self.env_runner_group.sample(cfg.train_batch_size_per_learner, explore=cfg.explore)
        self._record_samples(batches)
        data = self._postprocess(batches)
        adv = data["adv"]
        adv = (adv - adv.mean()) / max(float(adv.std()), 1e-4)
        obs = torch.from_numpy(data["obs"])
        actions = torch.from_numpy(data["actions"])
        if self.module.dist == "categorical":
            actions = actions.long()
        old_logp = torch.from_numpy(data["logp"])
        adv_t = torch.from_numpy(adv.astype(np.float32))
        targets = torch.from_numpy(data["targets"])
        with torch.no_grad():
            old_inputs = self.module._forward({"obs": obs})["action_dist_inputs"]
        n = obs.shape[0]
        mb = min(cfg.minibatch_size or n, n)
        sums: dict[str, float] = {}
        steps = 0
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        for _ in range(cfg.num_epochs):
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n - mb + 1, mb):
                idx = perm[start:start + mb]
                stats = self._ppo_loss(obs[idx], actions[idx], old_logp[idx], adv_t[idx], targets[idx],
                                       old_inputs[idx])
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
        self._counters["trained_iter"] += n * cfg.num_epochs
        means = {k: v / max(steps, 1) for k, v in sums.items()}
        if cfg.use_kl_loss:  # adapt the KL coefficient toward kl_target, as Ray does
            if means["mean_kl_loss"] > 2.0 * cfg.kl_target:
                self.kl_coeff *= 1.5
            elif means["mean_kl_loss"] < 0.5 * cfg.kl_target:
                self.kl_coeff *= 0.5
        var = float(np.var(data["targets"]))
        with torch.no_grad():
            vf = self.module.compute_values(obs).numpy()
        means["vf_explained_var"] = float(1.0 - np.var(data["targets"] - vf) / var) if var > 0 else 0.0
        means["curr_kl_coeff"] = self.kl_coeff
        means["curr_entropy_coeff"] = cfg.entropy_coeff
        means["num_module_steps_trained"] = n * cfg.num_epochs
        self._sync_weights()
        return means

    def _ppo_loss(self, obs: Any, actions: Any, old_logp: Any, adv: Any, targets: Any,
                  old_inputs: Any) -> dict[str, float]:
        torch = self._torch()
        cfg = self.config
        out = self.module._forward({"obs": obs})
        dist = self.module.distribution(out["action_dist_inputs"])
        logp = dist.log_prob(actions)
        ratio = torch.exp(logp - old_logp)
        surrogate = torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - cfg.clip_param, 1 + cfg.clip_param))
        policy_loss = -surrogate.mean()
        entropy = dist.entropy().mean()
        total = policy_loss - cfg.entropy_coeff * entropy
        vf_unclipped = torch.zeros(())
        vf_loss = torch.zeros(())
        if cfg.use_critic:
            vf_unclipped = (out["vf_preds"] - targets).pow(2)
            vf_loss = torch.clamp(vf_unclipped, 0, cfg.vf_clip_param).mean()
            vf_unclipped = vf_unclipped.mean()
            total = total + cfg.vf_loss_coeff * vf_loss
        kl = torch.zeros(())
        if cfg.use_kl_loss:
            old_dist = self.module.distribution(old_inputs)
            kl = torch.distributions.kl_divergence(old_dist, dist).mean()
            total = total + self.kl_coeff * kl
        self._apply_grads(total)
        return {"policy_loss": float(policy_loss.detach()), "vf_loss": float(vf_loss.detach()),
                "vf_loss_unclipped": float(vf_unclipped.detach()),
                "entropy": float(entropy.detach()), "mean_kl_loss": float(kl.detach()),
                "total_loss": float(total.detach())}
