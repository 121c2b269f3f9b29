"""N-step transitions built fragment by fragment equal those of the whole stream at once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.rllib.algorithms.dqn import DQNConfig
from tray.rllib.utils.n_step import NStepBuilder


def stream(T, seed):
    """One env's steps: obs are distinct step counters, episodes end at random (terminated or truncated)."""
    rng = np.random.default_rng(seed)
    ends = rng.random(T) < 0.15
    term = ends & (rng.random(T) < 0.5)
    trunc = ends & ~term
    obs = np.arange(T, dtype=np.float32)[:, None]
    next_obs = obs + 0.5  # an episode's next obs is the next step's obs, except at its end (a final obs)
    next_obs[:-1][~ends[:-1]] = obs[1:][~ends[:-1]]
    return {"obs": obs, "next_obs": next_obs, "actions": np.arange(T), "rewards": rng.normal(size=T).astype(np.float32),
            "terminateds": term, "truncateds": trunc}


def reference(s, n, gamma):
    """Every step's window: up to n steps, cut at its episode's end or the stream's end."""
    T = len(s["rewards"])
    out = {}
    for t in range(T):
        ret, k = 0.0, 0
        while True:
            ret += gamma**k * s["rewards"][t + k]
            k += 1
            if s["terminateds"][t + k - 1] or s["truncateds"][t + k - 1] or k == n or t + k == T:
                break
        out[int(s["actions"][t])] = (ret, float(s["next_obs"][t + k - 1, 0]), bool(s["terminateds"][t + k - 1]),
                                     gamma**k)
    return out


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 40), n=st.integers(1, 5), seed=st.integers(0, 10_000),
       cuts=st.lists(st.integers(1, 39), max_size=8), gamma=st.floats(0.5, 1.0))
def test_fragments_give_the_streams_n_step_transitions(T, n, seed, cuts, gamma):
    s = stream(T, seed)
    builder = NStepBuilder(gamma)
    got = {}
    bounds = sorted({0, T, *[c for c in cuts if c < T]})
    for a, b in zip(bounds, bounds[1:], strict=False):
        frag = {k: v[a:b][:, None] for k, v in s.items()}  # [T, 1 env, ...]
        out = builder.add_fragment("runner", frag, n)
        for i in range(len(out["rewards"])):
            got[int(out["actions"][i])] = (float(out["rewards"][i]), float(out["next_obs"][i, 0]),
                                           bool(out["terminateds"][i]), float(out["discounts"][i]))
    expected = reference(s, n, gamma)
    # what is still open waits for the next fragment: the last steps whose window has neither n steps nor an end
    assert builder.num_open() == T - len(got) < n
    for step, value in got.items():
        assert value == pytest.approx(expected[step], rel=1e-5, abs=1e-5)


def test_a_stream_that_does_not_continue_closes_its_open_windows():
    builder = NStepBuilder(0.5)
    first = {k: v[:2][:, None] for k, v in stream(2, 0).items()}
    first["terminateds"][:] = first["truncateds"][:] = False
    assert len(builder.add_fragment(1, first, 3)["rewards"]) == 0
    restarted = {k: v[:, None] for k, v in stream(1, 1).items()}
    restarted["obs"][:] = 99.0  # a replaced runner's fresh reset: not the open windows' next obs
    restarted["terminateds"][:] = restarted["truncateds"][:] = False
    out = builder.add_fragment(1, restarted, 3)
    assert out["actions"].tolist() == [0, 1]  # the first fragment's two steps, closed where the stream broke
    assert out["discounts"].tolist() == [0.25, 0.5] and not out["terminateds"].any()
    assert builder.num_open() == 1  # the new stream's first step waits for its window


def test_n_step_settings():
    assert DQNConfig().training(n_step=(2, 5)).n_step_range() == (2, 5)
    assert DQNConfig().training(n_step=[1, 3]).n_step == (1, 3)
    with pytest.raises(ValueError, match="n_step"):
        DQNConfig().environment("CartPole-v1").training(n_step=0).validate()
