"""Remote env runners: weights by one put, a SIGKILLed or failing runner replaced mid-training."""

import os
import signal

import gymnasium as gym
import pytest

import tray
from tray.rllib.algorithms.ppo import PPOConfig


class FlakyCartPole(gym.Wrapper):
    """CartPole whose env in runner 2 raises once (marked by a file, so its replacement does not)."""

    def __init__(self, config):
        super().__init__(gym.make("CartPole-v1"))
        self.marker = config["marker"]
        self.worker_index = config.worker_index
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.worker_index == 2 and self.steps == 50 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise RuntimeError("the env broke")
        return self.env.step(action)


def _config(env="CartPole-v1", **env_config):
    return (PPOConfig().environment(env, env_config=env_config)
            .env_runners(num_env_runners=2, rollout_fragment_length=100)
            .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
            .rl_module(model_config={"fcnet_hiddens": [16]}).debugging(seed=0))


def test_sigkilled_runner_is_replaced_and_training_goes_on(cluster):
    algo = _config().build_algo()
    try:
        assert algo.train()["fault_tolerance"]["num_healthy_workers"] == 2
        runner = algo.env_runner_group.runners[1]
        pid = tray.get(runner.ping.remote())
        os.kill(pid, signal.SIGKILL)
        results = [algo.train() for _ in range(3)]
        assert results[-1]["fault_tolerance"]["num_remote_worker_restarts"] >= 1
        assert all(r["env_runners"]["num_env_steps_sampled"] >= 200 for r in results)
        assert tray.get(runner.ping.remote(), timeout=60) != pid  # a new incarnation serves
    finally:
        algo.stop()


def test_env_error_names_env_and_runner_and_runner_is_replaced(cluster, tmp_path, caplog):
    algo = _config(FlakyCartPole, marker=str(tmp_path / "raised")).build_algo()
    try:
        with caplog.at_level("WARNING", logger="tray.rllib"):
            results = [algo.train() for _ in range(2)]
        assert any("env runner 2 (env FlakyCartPole) failed" in m and "the env broke" in m for m in caplog.messages)
        # the broken runner was replaced; a loaded full run (CI) also saw a second restart, cause not found
        assert results[-1]["fault_tolerance"]["num_remote_worker_restarts"] >= 1
    finally:
        algo.stop()


def test_env_error_without_restarts_raises_naming_it(cluster, tmp_path):
    algo = _config(FlakyCartPole, marker=str(tmp_path / "raised")).fault_tolerance(
        restart_failed_env_runners=False).build_algo()
    try:
        with pytest.raises(RuntimeError, match=r"env runner 2 \(env FlakyCartPole\) failed: .*the env broke"):
            for _ in range(2):
                algo.train()
    finally:
        algo.stop()


def test_more_runners_than_the_cluster_holds_fail_at_once(cluster):
    cfg = _config().env_runners(num_env_runners=5, num_cpus_per_env_runner=1)
    with pytest.raises(ValueError, match="num_env_runners=5 x num_cpus_per_env_runner=1 .* cluster has 2 CPUs"):
        cfg.build_algo()


def test_four_runners_fit_two_cpus_with_old_keys_and_an_old_gym_env(cluster):
    gym_old = pytest.importorskip("gym")

    class SimpleCorridor(gym_old.Env):
        def __init__(self, config):
            self.end_pos = config["corridor_length"]
            self.cur_pos = 0
            self.action_space = gym_old.spaces.Discrete(2)
            self.observation_space = gym_old.spaces.Box(0.0, self.end_pos, shape=(1,))

        def reset(self):
            self.cur_pos = 0
            return [self.cur_pos]

        def step(self, action):
            if action == 0 and self.cur_pos > 0:
                self.cur_pos -= 1
            elif action == 1:
                self.cur_pos += 1
            done = self.cur_pos >= self.end_pos
            return [self.cur_pos], 1 if done else 0, done, {}

    from tray.rllib.algorithms.ppo import PPO

    algo = PPO(config={"env": SimpleCorridor, "num_workers": 4, "env_config": {"corridor_length": 5},
                       "train_batch_size": 400, "sgd_minibatch_size": 100, "num_sgd_iter": 2})
    try:
        for _ in range(2):
            result = algo.train()
        assert result["fault_tolerance"]["num_healthy_workers"] == 4
        assert result["env_runners"]["num_episodes_lifetime"] > 0
        assert result["env_runners"]["episode_return_mean"] == 1.0
    finally:
        algo.stop()
