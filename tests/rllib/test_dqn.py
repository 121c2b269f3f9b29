"""DQN: epsilon schedule, replay buffer, learning CartPole, checkpoint of target net and buffer."""

import numpy as np
import pytest
import torch

from tray.rllib.algorithms.algorithm import Algorithm
from tray.rllib.algorithms.dqn import DQNConfig
from tray.rllib.algorithms.dqn.dqn import epsilon_at
from tray.rllib.utils.replay_buffers import ReplayBuffer


def test_epsilon_schedule_is_piecewise_linear():
    sched = [(0, 1.0), (10_000, 0.05)]
    assert epsilon_at(sched, 0) == 1.0
    assert epsilon_at(sched, 5_000) == pytest.approx(0.525)
    assert epsilon_at(sched, 50_000) == 0.05
    assert epsilon_at(0.1, 123) == 0.1


def test_replay_buffer_keeps_the_last_capacity_transitions():
    buf = ReplayBuffer(capacity=5, seed=0)
    for start in (0, 3):
        n = 3
        buf.add({"obs": np.arange(start, start + n, dtype=np.float32)[:, None], "actions": np.zeros(n, int),
                 "rewards": np.arange(start, start + n, dtype=np.float32), "next_obs": np.zeros((n, 1), np.float32),
                 "terminateds": np.zeros(n, bool)})
    assert len(buf) == 5
    assert set(buf.sample(200)["rewards"].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    other = ReplayBuffer(capacity=5)
    other.set_state(buf.get_state())
    assert set(other.sample(200)["rewards"].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def _config():
    return (DQNConfig().environment("CartPole-v1")
            .rl_module(model_config={"fcnet_hiddens": [64, 64], "head_fcnet_hiddens": []})
            .debugging(seed=0))


@pytest.mark.parametrize("n_step", [1, 3])
def test_dqn_learns_cartpole_a_little_fast(n_step):
    algo = _config().training(n_step=n_step).build_algo()
    try:
        best = 0.0
        for _ in range(15):  # 15,000 env steps
            result = algo.train()
            best = max(best, result["env_runners"]["episode_return_mean"])
            if best >= 50:
                break
        assert best >= 50, f"DQN reached only {best}"
        assert {"qf_loss", "qf_mean", "epsilon"} <= set(result["learners"]["default_policy"])
        assert 0.0 < algo.exploration_epsilon() < 1.0
    finally:
        algo.stop()


@pytest.mark.slow
def test_dqn_learns_cartpole():
    algo = _config().build_algo()
    try:
        best = 0.0
        for _ in range(60):
            best = max(best, algo.train()["env_runners"]["episode_return_mean"])
            if best >= 150:
                break
        assert best >= 150
    finally:
        algo.stop()


def test_dqn_checkpoint_round_trip(tmp_path):
    algo = _config().training(num_steps_sampled_before_learning_starts=200).reporting(
        min_sample_timesteps_per_iteration=400).build_algo()
    try:
        algo.train()
        path = algo.save(str(tmp_path / "dqn")).checkpoint.path
        obs = torch.zeros(3, 4)
        q = algo.get_module().forward_inference({"obs": obs})["qf_preds"]
        restored = Algorithm.from_checkpoint(path)
        try:
            assert torch.equal(restored.get_module().forward_inference({"obs": obs})["qf_preds"], q)
            assert len(restored.buffer) == len(algo.buffer) == 400
            assert torch.equal(next(restored.target.parameters()), next(algo.target.parameters()))
        finally:
            restored.stop()
    finally:
        algo.stop()
