"""RLlib through Tune: ``tune.register_env``, ``Tuner("PPO", param_space=config)`` and ``tune.run("PPO")``,
the learning curve written in the experiment folder."""

import csv
import json
import os

import gymnasium as gym

from tray import tune
from tray.rllib.algorithms.ppo import PPOConfig


def _make_cartpole(env_config):
    return gym.make("CartPole-v1", max_episode_steps=env_config.get("max_steps", 500))


def _config():
    return (PPOConfig().environment("tune_cartpole", env_config={"max_steps": 200})
            .env_runners(num_env_runners=1, rollout_fragment_length=200)
            .training(lr=1e-3, train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
            .rl_module(model_config={"fcnet_hiddens": [32]}).debugging(seed=0))


def _curve(trial_dir):
    with open(os.path.join(trial_dir, "progress.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(trial_dir, "result.json")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return rows, lines


def test_tuner_ppo_with_a_registered_env_writes_its_learning_curve(cluster, tmp_path):
    tune.register_env("tune_cartpole", _make_cartpole)
    tuner = tune.Tuner("PPO", param_space=_config(),
                       run_config=tune.RunConfig(name="ppo_exp", storage_path=str(tmp_path),
                                                 stop={"training_iteration": 3}))
    result = tuner.fit()[0]
    assert result.error is None
    assert result.metrics["training_iteration"] == 3
    assert result.metrics["env_runners"]["num_env_steps_sampled_lifetime"] >= 1200
    rows, lines = _curve(result.path)
    assert os.path.dirname(result.path) == str(tmp_path / "ppo_exp")
    assert [int(r["training_iteration"]) for r in rows] == [1, 2, 3]
    returns = [float(r["env_runners/episode_return_mean"]) for r in rows]
    assert all(ret > 0 for ret in returns)
    assert [line["env_runners"]["episode_return_mean"] for line in lines] == returns


def test_tune_run_ppo_by_name_with_a_dict_config(cluster, tmp_path):
    tune.register_env("tune_cartpole", _make_cartpole)
    analysis = tune.run("PPO", config=_config().to_dict(), stop={"training_iteration": 2},
                        storage_path=str(tmp_path), name="ppo_run", verbose=0)
    trial = analysis.trials[0]
    assert trial.last_result["training_iteration"] == 2
    rows, _ = _curve(trial.local_path)
    assert len(rows) == 2 and float(rows[-1]["env_runners/num_env_steps_sampled_lifetime"]) >= 800
