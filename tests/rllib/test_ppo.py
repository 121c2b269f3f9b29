"""PPO: learns CartPole (seeded, bounded env steps), checkpoints and acts identically after restore."""

import numpy as np
import pytest
import torch
from rllib_helpers import learns

from tray.rllib.algorithms.algorithm import Algorithm
from tray.rllib.algorithms.ppo import PPO, PPOConfig


def _config(**training):
    settings = {"lr": 3e-4, "lambda_": 0.95, "train_batch_size_per_learner": 2000, "minibatch_size": 128,
                "num_epochs": 6, **training}
    return (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .training(**settings)
            .rl_module(model_config={"fcnet_hiddens": [64, 64], "head_fcnet_hiddens": [], "vf_share_layers": False})
            .debugging(seed=0))


def test_ppo_learns_cartpole_within_bounded_steps():
    algo = _config().build_algo()
    try:
        result = learns(algo, 150, 20_000)
        learner = result["learners"]["default_policy"]
        assert {"policy_loss", "vf_loss", "entropy", "mean_kl_loss", "total_loss"} <= set(learner)
        assert result["training_iteration"] >= 1 and result["time_total_s"] > 0
    finally:
        algo.stop()


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_ppo_reaches_450_in_no_more_env_steps_than_rllib(cluster, seed):
    """The issue's benchmark: 2 env runners, lr 3e-4, 2,000-step batches, minibatch 128, 6 epochs, Ray's
    default model. RLlib 2.60 needs 34,000-60,000 env steps to a mean return of 450."""
    algo = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
            .training(lr=3e-4, train_batch_size_per_learner=2000, minibatch_size=128, num_epochs=6)
            .debugging(seed=seed).build_algo())
    try:
        learns(algo, 450, 60_000)
    finally:
        algo.stop()


def test_save_restore_acts_identically(tmp_path):
    algo = _config(num_epochs=2).build_algo()
    try:
        algo.train()
        path = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
        before = algo.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
        actions = [algo.compute_single_action(o, explore=False) for o in obs]
        algo.train()  # moves on: the restore must bring back the saved weights
        algo.restore(path)
        after = algo.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
        assert torch.equal(before, after)
        assert algo.iteration == 1
        restored = Algorithm.from_checkpoint(path)
        try:
            assert isinstance(restored, PPO)
            assert [restored.compute_single_action(o, explore=False) for o in obs] == actions
            again = restored.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
            assert torch.equal(before, again)
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_compute_single_action_as_ray_documents_it():
    algo = _config(num_epochs=1).build_algo()
    try:
        obs = np.array([0.0, 0.1, 0.02, -0.1], np.float32)
        with pytest.warns(DeprecationWarning, match="forward_inference"):
            greedy = algo.compute_single_action(obs, explore=False)
        logits = algo.get_module().forward_inference({"obs": torch.from_numpy(obs[None])})["action_dist_inputs"]
        assert greedy == int(logits.argmax())
        action, state, extra = algo.compute_single_action(input_dict={"obs": obs}, explore=False, full_fetch=True)
        assert action == greedy and state == []
        np.testing.assert_allclose(extra["action_dist_inputs"], logits[0].numpy(), rtol=1e-5, atol=1e-6)
        assert extra["action_logp"] == pytest.approx(float(torch.log_softmax(logits[0], -1)[greedy]), abs=1e-5)
        sampled = {algo.compute_single_action(obs) for _ in range(200)}  # explore follows config.explore (True)
        assert sampled == {0, 1}
        with pytest.raises(KeyError, match="no module 'other'"):
            algo.compute_single_action(obs, policy_id="other")
        with pytest.raises(ValueError, match="either observation or input_dict"):
            algo.compute_single_action(obs, input_dict={"obs": obs})
    finally:
        algo.stop()


def test_evaluate_reports_ray_keys():
    algo = _config(num_epochs=1).evaluation(evaluation_interval=1, evaluation_duration=3,
                                             evaluation_config={"explore": False}).build_algo()
    try:
        result = algo.train()
        ev = result["evaluation"]["env_runners"]
        assert ev["num_episodes"] == 3 and ev["episode_return_mean"] > 0 and ev["episode_len_mean"] > 0
        assert algo.evaluate()["env_runners"]["num_episodes"] == 3
    finally:
        algo.stop()


def test_evaluate_on_remote_runners_by_timesteps(cluster):
    algo = (_config(num_epochs=1).evaluation(evaluation_num_env_runners=1, evaluation_duration=300,
                                             evaluation_duration_unit="timesteps")
            .build_algo())
    try:
        ev = algo.evaluate()
        assert ev["env_runners"]["num_env_steps_sampled"] >= 300 and ev["evaluation_time_s"] > 0
        assert algo.eval_env_runner_group is not None and len(algo.eval_env_runner_group.runners) == 1
    finally:
        algo.stop()


def test_box_actions_pendulum_trains():
    algo = (PPOConfig().environment("Pendulum-v1").training(train_batch_size_per_learner=400, minibatch_size=100,
                                                            num_epochs=2)
            .rl_module(model_config={"fcnet_hiddens": [16]}).debugging(seed=1).build_algo())
    try:
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 400
        for explore in (True, False):
            a = algo.compute_single_action(np.zeros(3, np.float32), explore=explore)
            assert a.shape == (1,) and -2.0 <= float(a[0]) <= 2.0  # unsquashed onto the env's bounds
    finally:
        algo.stop()


def test_unknown_module_and_env_errors():
    with pytest.raises(ValueError, match="neither registered"):
        PPOConfig().environment("Nope-v0").build_algo()
