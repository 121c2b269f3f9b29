"""Advantage estimation on time-major arrays ``[T, num_envs]`` (pure numpy)."""

from __future__ import annotations

import numpy as np


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminateds: np.ndarray,
                truncateds: np.ndarray, gamma: float, lambda_: float) -> tuple[np.ndarray, np.ndarray]:
    """``(advantages, value targets)`` by generalized advantage estimation.

    ``next_values[t]`` is V of the observation that followed step ``t`` (the final observation
    when the episode ended there); a terminated step bootstraps nothing, a truncated one (time
    limit, or the end of the fragment) bootstraps from it, and no advantage flows across an
    episode boundary.
    """
    T = rewards.shape[0]
    bootstrap = np.where(terminateds, 0.0, next_values)
    deltas = rewards + gamma * bootstrap - values
    cont = (~(terminateds | truncateds)).astype(np.float64)
    adv = np.zeros_like(deltas, dtype=np.float64)
    last = np.zeros(rewards.shape[1:], np.float64)
    for t in range(T - 1, -1, -1):
        last = deltas[t] + gamma * lambda_ * cont[t] * last
        adv[t] = last
    return adv.astype(np.float32), (adv + values).astype(np.float32)
