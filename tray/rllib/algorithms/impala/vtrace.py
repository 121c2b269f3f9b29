"""V-trace (Espeholt et al. 2018, "IMPALA", section 4.1) on time-major arrays ``[T, num_envs]``.

Pure numpy. Samples come from a behaviour policy that lags the learner's (runners keep sampling
while it learns); V-trace corrects the value targets and policy-gradient advantages with
truncated importance weights ``rho = min(rho_bar, pi/mu)`` and traces ``c = min(c_bar, pi/mu)``.

A fragment may hold several episodes (runners reset envs as they end): the recursion stops at
every episode end, a terminated step bootstraps nothing and a truncated one (time limit, or the
fragment's last step) bootstraps from ``next_values``, the value of the observation that
followed it.
"""

from __future__ import annotations

import numpy as np


def vtrace(behaviour_logp: np.ndarray, target_logp: np.ndarray, rewards: np.ndarray, values: np.ndarray,
           next_values: np.ndarray, terminateds: np.ndarray, truncateds: np.ndarray, gamma: float,
           clip_rho_threshold: float | None = 1.0, clip_pg_rho_threshold: float | None = 1.0,
           clip_c_threshold: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(vs, pg_advantages)``: the V-trace value targets and the advantages for the policy gradient.

    ``vs[t] = V(x_t) + sum_{k>=t} gamma^(k-t) (prod_{i=t}^{k-1} c_i) rho_k delta_k``, with
    ``delta_k = r_k + gamma V(x_{k+1}) - V(x_k)``; ``pg_advantages[t] = rho_pg_t (r_t + gamma
    vs_{t+1} - V(x_t))``. A threshold of None leaves that weight unclipped.
    """
    rhos = np.exp(np.asarray(target_logp, np.float64) - np.asarray(behaviour_logp, np.float64))
    clipped_rhos = rhos if clip_rho_threshold is None else np.minimum(clip_rho_threshold, rhos)
    cs = np.minimum(clip_c_threshold, rhos)
    values = np.asarray(values, np.float64)
    bootstrap = np.where(terminateds, 0.0, np.asarray(next_values, np.float64))
    deltas = clipped_rhos * (rewards + gamma * bootstrap - values)
    cont = ~(np.asarray(terminateds, bool) | np.asarray(truncateds, bool))
    T = deltas.shape[0]
    vs_minus_v = np.zeros_like(deltas)
    acc = np.zeros(deltas.shape[1:], np.float64)
    for t in range(T - 1, -1, -1):
        acc = deltas[t] + gamma * cs[t] * cont[t] * acc
        vs_minus_v[t] = acc
    vs = vs_minus_v + values
    # vs_{t+1}: the next step's target inside an episode; at its end (or the fragment's), the bootstrap.
    vs_next = bootstrap.copy()
    inside = cont[:-1]
    vs_next[:-1] = np.where(inside, vs[1:], bootstrap[:-1])
    pg_rhos = rhos if clip_pg_rho_threshold is None else np.minimum(clip_pg_rho_threshold, rhos)
    pg_advantages = pg_rhos * (rewards + gamma * vs_next - values)
    return vs.astype(np.float32), pg_advantages.astype(np.float32)
