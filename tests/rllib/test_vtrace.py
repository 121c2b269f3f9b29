"""V-trace against the paper's definition (a direct sum per step), and its on-policy limit."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.rllib.algorithms.impala.vtrace import vtrace
from tray.rllib.utils.postprocessing import compute_gae


def reference(mu, pi, r, v, nv, term, trunc, gamma, rho_bar, pg_rho_bar):
    """Espeholt et al. (2018), eq. (1), summed step by step until the episode (or fragment) ends."""
    T, N = r.shape
    rho = np.exp(pi - mu)
    vs = np.zeros((T, N))
    for n in range(N):
        for s in range(T):
            total, weight = v[s, n], 1.0
            for t in range(s, T):
                boot = 0.0 if term[t, n] else nv[t, n]
                total += weight * min(rho_bar, rho[t, n]) * (r[t, n] + gamma * boot - v[t, n])
                if term[t, n] or trunc[t, n]:
                    break
                weight *= gamma * min(1.0, rho[t, n])
            vs[s, n] = total
    adv = np.zeros((T, N))
    for n in range(N):
        for s in range(T):
            ended = term[s, n] or trunc[s, n] or s == T - 1
            nxt = (0.0 if term[s, n] else nv[s, n]) if ended else vs[s + 1, n]
            adv[s, n] = min(pg_rho_bar, rho[s, n]) * (r[s, n] + gamma * nxt - v[s, n])
    return vs, adv


@settings(max_examples=50, deadline=None)
@given(T=st.integers(1, 10), N=st.integers(1, 3), seed=st.integers(0, 10_000), gamma=st.floats(0.0, 1.0),
       rho_bar=st.sampled_from([0.5, 1.0, 2.0]), pg_rho_bar=st.sampled_from([0.5, 1.0, 2.0]))
def test_vtrace_matches_the_papers_sum(T, N, seed, gamma, rho_bar, pg_rho_bar):
    rng = np.random.default_rng(seed)
    mu, pi = (np.log(rng.uniform(0.05, 1.0, (T, N))) for _ in range(2))
    r, v, nv = (rng.normal(size=(T, N)) for _ in range(3))
    term = rng.random((T, N)) < 0.2
    trunc = (rng.random((T, N)) < 0.2) & ~term
    vs, adv = vtrace(mu, pi, r, v, nv, term, trunc, gamma, rho_bar, pg_rho_bar)
    ref_vs, ref_adv = reference(mu, pi, r, v, nv, term, trunc, gamma, rho_bar, pg_rho_bar)
    np.testing.assert_allclose(vs, ref_vs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-4, atol=1e-4)


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 10), seed=st.integers(0, 10_000), gamma=st.floats(0.0, 1.0))
def test_on_policy_vtrace_targets_are_lambda_one_returns(T, seed, gamma):
    """With pi == mu every weight is 1: the targets are GAE's with lambda 1 (n-step bootstrapped returns)."""
    rng = np.random.default_rng(seed)
    logp = np.log(rng.uniform(0.05, 1.0, (T, 2)))
    r, v, nv = (rng.normal(size=(T, 2)).astype(np.float32) for _ in range(3))
    term = rng.random((T, 2)) < 0.2
    trunc = (rng.random((T, 2)) < 0.2) & ~term
    vs, _ = vtrace(logp, logp, r, v, nv, term, trunc, gamma)
    _, targets = compute_gae(r, v, nv, term, trunc, gamma, 1.0)
    np.testing.assert_allclose(vs, targets, rtol=1e-4, atol=1e-4)
