"""PPO: learns CartPole (seeded, bounded env steps), checkpoints and acts identically after restore."""

import numpy as np
import pytest
import torch

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
        best = 0.0
        for _ in range(25):  # 50,000 env steps at most
            result = algo.train()
            best = max(best, result["env_runners"]["episode_return_mean"])
            if best >= 150:
                break
        assert best >= 150, f"mean return reached only {best} in {result['num_env_steps_sampled_lifetime']} steps"
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] <= 50_000
        learner = result["learners"]["default_policy"]
        assert {"policy_loss", "vf_loss", "entropy", "mean_kl_loss", "total_loss"} <= set(learner)
        assert result["training_iteration"] >= 1 and result["time_total_s"] > 0
    finally:
        algo.stop()


def test_save_restore_acts_identically(tmp_path):
    algo = _config(num_epochs=2).build_algo()
    try:
        algo.train()
        path = algo.save(str(tmp_path / "ckpt")).checkpoint.path
        obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
        before = algo.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
        actions = [algo.compute_single_action(o) for o in obs]
        algo.train()  # moves on: the restore must bring back the saved weights
        algo.restore(path)
        after = algo.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
        assert torch.equal(before, after)
        assert algo.iteration == 1
        restored = Algorithm.from_checkpoint(path)
        try:
            assert isinstance(restored, PPO)
            assert [restored.compute_single_action(o) for o in obs] == actions
            again = restored.get_module().forward_inference({"obs": torch.from_numpy(obs)})["action_dist_inputs"]
            assert torch.equal(before, again)
        finally:
            restored.stop()
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


def test_box_actions_pendulum_trains():
    algo = (PPOConfig().environment("Pendulum-v1").training(train_batch_size_per_learner=400, minibatch_size=100,
                                                            num_epochs=2)
            .rl_module(model_config={"fcnet_hiddens": [16]}).debugging(seed=1).build_algo())
    try:
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 400
        a = algo.compute_single_action(np.zeros(3, np.float32))
        assert a.shape == (1,)
    finally:
        algo.stop()


def test_unknown_module_and_env_errors():
    with pytest.raises(ValueError, match="neither registered"):
        PPOConfig().environment("Nope-v0").build_algo()
