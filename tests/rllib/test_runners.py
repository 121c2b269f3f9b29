"""Remote env runners: weights by one put, a SIGKILLed or failing runner replaced mid-training."""

import os
import signal
import threading
import time

import gymnasium as gym
import pytest
from rllib_helpers import simple_corridor

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


class SlowAfterBreaking(FlakyCartPole):
    """FlakyCartPole whose broken env, still in its old process until the kill lands, steps slowly."""

    def step(self, action):
        if self.steps >= 50 and self.worker_index == 2 and os.getpid() == self.broke_in:
            time.sleep(0.03)  # a sample sent to the old process is still running when the kill lands
        try:
            return super().step(action)
        except RuntimeError:
            self.broke_in = os.getpid()
            raise

    broke_in = -1


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
        assert results[-1]["fault_tolerance"]["num_remote_worker_restarts"] == 1
    finally:
        algo.stop()


def test_a_slow_kill_does_not_pass_the_old_process_off_as_the_replacement(cluster, tmp_path, monkeypatch):
    """Under load the kill of the runner whose env raised lands late, and its old process answers
    the first ping: that answer must not make the runner healthy (it would be sent the next sample,
    then die under it: a second restart)."""
    real_kill = tray.kill

    def late_kill(handle, *, no_restart=True):
        if no_restart:
            return real_kill(handle, no_restart=True)
        timer = threading.Timer(1.5, real_kill, (handle,), {"no_restart": False})
        timers.append(timer)
        timer.start()

    timers: list[threading.Timer] = []
    monkeypatch.setattr(tray, "kill", late_kill)
    algo = _config(SlowAfterBreaking, marker=str(tmp_path / "raised")).build_algo()
    try:
        deadline = time.monotonic() + 120  # until the replacement is up (a new process) and has sampled
        while time.monotonic() < deadline:
            tolerance = algo.train()["fault_tolerance"]
            if tolerance["num_healthy_workers"] == 2 or tolerance["num_remote_worker_restarts"] > 1:
                tolerance = algo.train()["fault_tolerance"]
                break
        assert tolerance == {**tolerance, "num_healthy_workers": 2, "num_remote_worker_restarts": 1}
    finally:
        for timer in timers:
            timer.join()
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
    SimpleCorridor = simple_corridor()

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
