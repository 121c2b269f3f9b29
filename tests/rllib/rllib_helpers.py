"""What several RLlib test modules share: the issue's old gym-API SimpleCorridor and a
train-until-good-enough loop (kept in one place so a fix reaches every test)."""

from __future__ import annotations

from typing import Any

import pytest


def simple_corridor() -> type:
    """The seed program's ``SimpleCorridor`` on the old gym API (reset returns only the observation,
    step a 4-tuple); the calling test is skipped when gym is not installed. Made per call, so a
    worker unpickles the class by value and need not import this module."""
    gym = pytest.importorskip("gym")

    class SimpleCorridor(gym.Env):
        def __init__(self, config: dict[str, Any]) -> None:
            self.end_pos = config["corridor_length"]
            self.cur_pos = 0
            self.action_space = gym.spaces.Discrete(2)
            self.observation_space = gym.spaces.Box(0.0, self.end_pos, shape=(1,))

        def reset(self) -> list[int]:
            self.cur_pos = 0
            return [self.cur_pos]

        def step(self, action: int) -> tuple[list[int], int, bool, dict]:
            if action == 0 and self.cur_pos > 0:
                self.cur_pos -= 1
            elif action == 1:
                self.cur_pos += 1
            done = self.cur_pos >= self.end_pos
            return [self.cur_pos], 1 if done else 0, done, {}

    return SimpleCorridor


def learns(algo: Any, threshold: float, max_steps: int) -> dict[str, Any]:
    """Train until the mean episode return reaches ``threshold`` (the last result), failing the
    test if ``max_steps`` env steps are sampled first."""
    best = 0.0
    while True:
        result = algo.train()
        best = max(best, result["env_runners"]["episode_return_mean"])
        if best >= threshold:
            return result
        steps = result["num_env_steps_sampled_lifetime"]
        assert steps < max_steps, f"{type(algo).__name__} reached a mean return of only {best} in {steps} steps"
