"""Env runners act in numpy with the torch module's weights: both must compute the same outputs."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from tray.rllib.core.rl_module.numpy_policy import NumpyPolicy
from tray.rllib.core.rl_module.torch_rl_module import ActorCriticModule, QModule


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-2.0, 2.0, (2,))])
def test_numpy_policy_matches_torch_module(shared, space):
    m = ActorCriticModule(gym.spaces.Box(-1, 1, (4,)), space,
                          {"fcnet_hiddens": [8, 8], "vf_share_layers": shared, "head_fcnet_hiddens": [6],
                           "fcnet_activation": "tanh", "head_fcnet_activation": "relu"})
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    expected = m.forward_inference({"obs": torch.from_numpy(x)})["action_dist_inputs"].numpy()
    np.testing.assert_allclose(NumpyPolicy(m.numpy_weights()).pi(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dueling", [True, False])
def test_numpy_q_values_match_torch(dueling):
    q = QModule(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), {"fcnet_hiddens": [8]}, dueling=dueling)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    expected = q.forward_inference({"obs": torch.from_numpy(x)})["qf_preds"].numpy()
    np.testing.assert_allclose(NumpyPolicy(q.numpy_weights()).q_values(x), expected, rtol=1e-5, atol=1e-6)


def test_categorical_sampling_logp_is_consistent():
    m = ActorCriticModule(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(3), {"fcnet_hiddens": [8]})
    x = np.random.default_rng(2).normal(size=(64, 4)).astype(np.float32)
    actions, logp = NumpyPolicy(m.numpy_weights()).act_batch(x, np.random.default_rng(0), explore=True)
    dist = m.distribution(m.forward_inference({"obs": torch.from_numpy(x)})["action_dist_inputs"])
    np.testing.assert_allclose(logp, dist.log_prob(torch.from_numpy(actions)).numpy(), rtol=1e-4, atol=1e-5)
