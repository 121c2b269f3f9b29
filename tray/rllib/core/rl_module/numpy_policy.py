"""The RLModule's inference half in numpy, for env runners.

Env runners act with the learner's weights (a dict of numpy arrays, put once per update) and
never import torch: a batched MLP forward in numpy costs microseconds where torch's dispatch
costs tens, and a runner process starts without torch's second of imports.

Weights layout (what ``TorchRLModule.numpy_weights()`` returns): ``"enc"``, a shared trunk, and
one list per head (``"pi"``, ``"vf"``, ``"q"``, ``"v"``), each a list of ``(W, b, activation)`` with
``W`` shaped ``(in, out)`` and the activation applied after the layer ("linear": none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_ACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0.0)) - 1.0),
}


def _chain(x: np.ndarray, layers: list) -> np.ndarray:
    for w, b, act in layers:
        x = x @ w + b
        if act != "linear":
            x = _ACT[act](x)
    return x


class NumpyPolicy:
    """Acts on a batch of flat observations: sampled or greedy actions, their log-probs, Q-values."""

    def __init__(self, weights: dict[str, Any]) -> None:
        self.w = weights
        self.dist = weights["dist"]  # "categorical" | "gaussian" | "q"

    def _trunk(self, obs: np.ndarray) -> np.ndarray:
        return _chain(obs, self.w["enc"])

    def pi(self, obs: np.ndarray) -> np.ndarray:
        return _chain(self._trunk(obs), self.w["pi"])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        h = self._trunk(obs)
        adv = _chain(h, self.w["q"])
        if self.w.get("v"):
            v = _chain(h, self.w["v"])
            return v + adv - adv.mean(axis=-1, keepdims=True)
        return adv

    def act_batch(self, obs: np.ndarray, rng: np.random.Generator, explore: bool,
                  epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """``(actions, log-probs)`` for a batch (log-probs are zeros for Q-learning's epsilon-greedy)."""
        n = obs.shape[0]
        if self.dist == "q":
            actions = self.q_values(obs).argmax(axis=-1)
            if explore and epsilon > 0:
                rand = np.asarray(rng.random(n) < epsilon)
                if rand.any():
                    actions = np.where(rand, rng.integers(0, self.w["num_actions"], n), actions)
            return actions, np.zeros(n, np.float32)
        out = self.pi(obs)
        if self.dist == "categorical":
            logits = out - out.max(axis=-1, keepdims=True)
            logp_all = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            if explore:
                u = rng.random((n, 1))
                actions = (np.exp(logp_all).cumsum(axis=-1) < u).sum(axis=-1)
                actions = np.minimum(actions, logits.shape[-1] - 1)
            else:
                actions = logp_all.argmax(axis=-1)
            return actions, logp_all[np.arange(n), actions].astype(np.float32)
        dim = out.shape[-1] // 2
        mean, log_std = out[:, :dim], out[:, dim:]
        if not explore:
            return mean.astype(np.float32), np.zeros(n, np.float32)
        std = np.exp(log_std)
        noise = rng.standard_normal(mean.shape)
        actions = mean + std * noise
        logp = (-0.5 * noise**2 - log_std - 0.5 * np.log(2 * np.pi)).sum(axis=-1)
        return actions.astype(np.float32), logp.astype(np.float32)
