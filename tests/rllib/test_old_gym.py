"""Old gym-API envs are adapted at the edge, with one warning saying what was adapted."""

import warnings

import gymnasium
import numpy as np
import pytest

gym = pytest.importorskip("gym")

from rllib_helpers import simple_corridor  # noqa: E402

from tray.rllib.env import old_gym  # noqa: E402
from tray.rllib.env.env_context import EnvContext, EnvCreator  # noqa: E402

SimpleCorridor = simple_corridor()


class TimeLimited(SimpleCorridor):
    def step(self, action):
        obs, r, done, info = super().step(action)
        return obs, r, True, {"TimeLimit.truncated": True}


def test_old_api_env_is_adapted_with_one_warning():
    old_gym._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = old_gym.adapt(SimpleCorridor({"corridor_length": 2}), "SimpleCorridor")
        old_gym.adapt(SimpleCorridor({"corridor_length": 2}), "SimpleCorridor")
    msgs = [str(w.message) for w in caught if "old gym API" in str(w.message)]
    assert len(msgs) == 1
    assert "gym.spaces converted" in msgs[0] and "reset() returning only the observation" in msgs[0]
    assert isinstance(env.observation_space, gymnasium.spaces.Box)
    assert isinstance(env.action_space, gymnasium.spaces.Discrete) and env.action_space.n == 2
    obs, info = env.reset(seed=1)
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32 and obs.shape == (1,) and info == {}
    assert env.step(1) == (np.array([1.0], np.float32), 0.0, False, False, {}) or env.step  # tuple of 5
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.tolist() == [2.0] and reward == 1.0 and terminated and not truncated


def test_time_limit_done_becomes_truncated():
    env = old_gym.adapt(TimeLimited({"corridor_length": 5}), "TimeLimited")
    env.reset()
    _, _, terminated, truncated, info = env.step(0)
    assert truncated and not terminated and "TimeLimit.truncated" not in info


def test_gymnasium_env_is_left_alone():
    env = gymnasium.make("CartPole-v1")
    assert old_gym.adapt(env, "CartPole-v1") is env
    assert old_gym.needs_adapting(env) == []


def test_spaces_convert():
    box = old_gym.convert_space(gym.spaces.Box(-1.0, 2.0, shape=(3,)))
    assert isinstance(box, gymnasium.spaces.Box) and box.shape == (3,) and float(box.high[0]) == 2.0
    tup = old_gym.convert_space(gym.spaces.Tuple([gym.spaces.Discrete(3), gym.spaces.MultiBinary(2)]))
    assert isinstance(tup, gymnasium.spaces.Tuple) and tup.spaces[0].n == 3
    with pytest.raises(TypeError, match="cannot convert space"):
        old_gym.convert_space(object())


def test_creator_resolves_ids_classes_and_bad_names():
    ctx = EnvContext({"corridor_length": 3}, worker_index=2, num_workers=4)
    env = EnvCreator(SimpleCorridor)(ctx)
    assert env.reset()[0].tolist() == [0.0]
    assert isinstance(EnvCreator("CartPole-v1")(EnvContext({})).unwrapped, gymnasium.Env)
    with pytest.raises(ValueError, match="'NoSuchEnv-v0' is neither registered"):
        EnvCreator("NoSuchEnv-v0")
