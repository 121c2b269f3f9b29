"""IMPALA and APPO: asynchronous sampling with V-trace, APPO's circular buffer, learning CartPole."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rllib_helpers import learns

from tray.rllib.algorithms.algorithm import Algorithm
from tray.rllib.algorithms.appo import APPO, APPOConfig
from tray.rllib.algorithms.appo.circular_buffer import CircularBuffer
from tray.rllib.algorithms.impala import IMPALAConfig


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 4), ops=st.lists(st.booleans(), max_size=60), seed=st.integers(0, 99))
def test_circular_buffer_draws_each_batch_at_most_k_times_and_keeps_the_newest_n(n, k, ops, seed):
    buf = CircularBuffer(n, k, seed=seed)
    model: dict[int, int] = {}  # batch -> times drawn, for the batches a model buffer holds
    added = 0
    for add in ops:
        if add or not model:
            buf.add(added)
            model[added] = 0
            if len(model) > n:
                del model[min(model)]  # the oldest leaves, however often it was drawn
            added += 1
        else:
            b = buf.sample()
            assert b in model  # only a held batch: one of the newest n, drawn fewer than k times
            model[b] += 1
            if model[b] == k:
                del model[b]
        assert len(buf) == len(model) <= n


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="vtrace=True only"):
        IMPALAConfig().environment("CartPole-v1").training(vtrace=False).validate()
    with pytest.raises(ValueError, match="circular_buffer_num_batches"):
        CircularBuffer(0, 2)
    with pytest.raises(TypeError):
        APPOConfig().training(lambda_=0.9)  # not an APPO option here: V-trace replaces GAE


def _impala():
    return (IMPALAConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
            .training(vf_loss_coeff=0.05, entropy_coeff=0.0)
            .reporting(min_time_s_per_iteration=None, min_sample_timesteps_per_iteration=5000)
            .rl_module(model_config={"fcnet_hiddens": [64, 64]}).debugging(seed=0))


def _appo():
    return (APPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
            .training(vf_loss_coeff=0.05, entropy_coeff=0.0)
            .reporting(min_time_s_per_iteration=None, min_sample_timesteps_per_iteration=5000)
            .rl_module(model_config={"fcnet_hiddens": [64, 64]}).debugging(seed=0))


def test_impala_learns_cartpole_a_little_with_runners_sampling_while_it_learns(cluster):
    algo = _impala().build_algo()
    try:
        result = learns(algo, 50, 200_000)
        learner = result["learners"]["default_policy"]
        assert {"mean_pi_loss", "mean_vf_loss", "entropy", "pi_loss", "vf_loss"} <= set(learner)
        # runners sample while the learner learns, so some fragments come from weights an update old
        # (a synchronous learner, or the in-process runner, trains on its current weights only: 0)
        assert learner["diff_num_grad_updates_vs_sampler_policy"] > 0
        assert result["learners"]["__all_modules__"]["num_env_steps_trained"] > 0
    finally:
        algo.stop()


def test_appo_learns_cartpole_fast(cluster):
    algo = _appo().build_algo()
    try:
        result = learns(algo, 100, 150_000)
        learner = result["learners"]["default_policy"]
        assert {"policy_loss", "vf_loss", "entropy", "mean_IS", "var_IS", "num_target_updates"} <= set(learner)
        assert learner["num_target_updates"] >= 1
        # each batch trains about K=2 times: twice as many steps trained as sampled
        trained = result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"]
        assert trained > 1.5 * result["num_env_steps_sampled_lifetime"] - 5000
    finally:
        algo.stop()


def test_appo_in_process_checkpoint_round_trip(tmp_path):
    algo = (APPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
            .training(train_batch_size_per_learner=100, use_kl_loss=True, target_network_update_freq=1,
                      circular_buffer_num_batches=2, circular_buffer_iterations_per_batch=1)
            .reporting(min_time_s_per_iteration=None, min_sample_timesteps_per_iteration=500)
            .rl_module(model_config={"fcnet_hiddens": [16]}).debugging(seed=0).build_algo())
    try:
        result = algo.train()
        assert result["learners"]["default_policy"]["diff_num_grad_updates_vs_sampler_policy"] == 0  # local: in step
        assert result["learners"]["default_policy"]["num_target_updates"] >= 1
        path = algo.save(str(tmp_path / "appo")).checkpoint.path
        obs = torch.from_numpy(np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
        before = algo.get_module().forward_inference({"obs": obs})["action_dist_inputs"]
        restored = Algorithm.from_checkpoint(path)
        try:
            assert isinstance(restored, APPO) and restored.kl_coeff == algo.kl_coeff
            assert torch.equal(restored.get_module().forward_inference({"obs": obs})["action_dist_inputs"], before)
            assert torch.equal(next(restored.target.parameters()), next(algo.target.parameters()))
        finally:
            restored.stop()
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.parametrize("make", [_impala, _appo])
def test_impala_and_appo_learn_cartpole(cluster, make):
    algo = make().build_algo()
    try:
        learns(algo, 150, 1_000_000)
    finally:
        algo.stop()


def test_impala_goes_on_when_a_runner_is_sigkilled_mid_sampling(cluster):
    import os
    import signal

    import tray

    algo = _impala().reporting(min_sample_timesteps_per_iteration=1000).build_algo()
    try:
        algo.train()
        runner = algo.env_runner_group.runners[2]
        pid = tray.get(runner.ping.remote())
        os.kill(pid, signal.SIGKILL)  # while it has a sample call in flight
        results = [algo.train() for _ in range(3)]
        assert results[-1]["fault_tolerance"]["num_remote_worker_restarts"] >= 1
        assert all(r["env_runners"]["num_env_steps_sampled"] >= 1000 for r in results)
        assert tray.get(runner.ping.remote(), timeout=60) != pid
    finally:
        algo.stop()
