"""PPO (Ray's ``ray.rllib.algorithms.ppo``)."""

from .ppo import PPO, PPOConfig

__all__ = ["PPO", "PPOConfig"]
