"""GAE against a direct per-step reference."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.rllib.utils.postprocessing import compute_gae


def reference(r, v, nv, term, trunc, gamma, lam):
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for t in range(T):
            total, discount = 0.0, 1.0
            for k in range(t, T):
                boot = 0.0 if term[k, n] else nv[k, n]
                delta = r[k, n] + gamma * boot - v[k, n]
                total += discount * delta
                if term[k, n] or trunc[k, n]:
                    break
                discount *= gamma * lam
            adv[t, n] = total
    return adv


@settings(max_examples=50, deadline=None)
@given(T=st.integers(1, 12), N=st.integers(1, 3), seed=st.integers(0, 1000),
       gamma=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_gae_matches_reference(T, N, seed, gamma, lam):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.normal(size=(T, N)).astype(np.float32) for _ in range(3))
    term = rng.random((T, N)) < 0.2
    trunc = (rng.random((T, N)) < 0.2) & ~term
    adv, targets = compute_gae(r, v, nv, term, trunc, gamma, lam)
    np.testing.assert_allclose(adv, reference(r, v, nv, term, trunc, gamma, lam), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(targets, adv + v, rtol=1e-5, atol=1e-5)
