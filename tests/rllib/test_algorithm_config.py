"""AlgorithmConfig: setters, the dict form with old keys, and the runner-CPU arithmetic."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.rllib.algorithms._legacy_keys import translate
from tray.rllib.algorithms.ppo import PPO, PPOConfig


def test_chained_setters_and_to_dict_round_trip():
    cfg = (PPOConfig().environment("CartPole-v1", env_config={"a": 1})
           .env_runners(num_env_runners=3, num_envs_per_env_runner=2, rollout_fragment_length=50)
           .training(lr=1e-3, gamma=0.9, lambda_=0.95, clip_param=0.2, train_batch_size_per_learner=600,
                     minibatch_size=64, num_epochs=4)
           .rl_module(model_config={"fcnet_hiddens": [32]}).framework("torch").debugging(seed=3))
    d = cfg.to_dict()
    assert d["lambda"] == 0.95 and "lambda_" not in d
    back = PPOConfig.from_dict(d)
    assert back.to_dict() == d
    assert back.model_config["fcnet_hiddens"] == [32] and back.model_config["fcnet_activation"] == "tanh"
    assert cfg.algo_class is PPO


def test_old_keys_map_to_todays_names():
    cfg = PPOConfig().update_from_dict({"env": "CartPole-v1", "num_workers": 4, "num_envs_per_worker": 2,
                                        "train_batch_size": 1000, "sgd_minibatch_size": 100, "num_sgd_iter": 3,
                                        "lr": 0.01, "gamma": 0.5, "lambda": 0.9, "model": {"fcnet_hiddens": [8]},
                                        "framework": "torch"})
    assert (cfg.num_env_runners, cfg.num_envs_per_env_runner, cfg.train_batch_size_per_learner) == (4, 2, 1000)
    assert (cfg.minibatch_size, cfg.num_epochs, cfg.lr, cfg.gamma, cfg.lambda_) == (100, 3, 0.01, 0.5, 0.9)
    assert cfg.model_config["fcnet_hiddens"] == [8]
    assert cfg["num_workers"] == 4 and cfg.get("lambda") == 0.9


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown PPOConfig keys \\['no_such_key'\\]"):
        PPOConfig().update_from_dict({"no_such_key": 1})
    with pytest.raises(ValueError, match="framework 'tf2'"):
        PPOConfig().framework("tf2")
    with pytest.raises(ValueError, match="both 'num_workers' and its new name"):
        translate({"num_workers": 1, "num_env_runners": 2})
    with pytest.raises(TypeError):
        PPOConfig().training(no_such_option=1)
    with pytest.raises(ValueError, match="no env set"):
        PPOConfig().validate()
    with pytest.raises(ValueError, match="minibatch_size"):
        PPOConfig().environment("CartPole-v1").training(train_batch_size_per_learner=10, minibatch_size=20).validate()


def test_explicit_runner_cpus_beyond_the_cluster_fail_naming_the_resources():
    cfg = PPOConfig().env_runners(num_env_runners=8, num_cpus_per_env_runner=1)
    with pytest.raises(ValueError, match=r"num_env_runners=8 x num_cpus_per_env_runner=1 .* 8 CPUs, but the "
                                         r"cluster has 2 CPUs"):
        cfg.cpus_per_env_runner(cluster_cpus=2, main_cpus=0)


@given(n=st.integers(1, 64), cluster=st.floats(0.5, 64), main=st.sampled_from([0.0, 1.0]))
def test_unset_runner_cpus_fit_the_cluster(n, cluster, main):
    per = PPOConfig().env_runners(num_env_runners=n).cpus_per_env_runner(cluster, main)
    assert 0 <= per <= 1
    assert main + n * per <= max(cluster, main) + 1e-9


@given(batch=st.integers(1, 10_000), runners=st.integers(0, 8), envs=st.integers(1, 8))
def test_auto_fragment_covers_one_train_batch(batch, runners, envs):
    cfg = PPOConfig().env_runners(num_env_runners=runners, num_envs_per_env_runner=envs).training(
        train_batch_size_per_learner=batch)
    frag = cfg.get_rollout_fragment_length()
    total_envs = max(1, runners) * envs
    assert frag * total_envs >= batch
    assert (frag - 1) * total_envs < batch or frag == 1
    assert math.isfinite(frag)
