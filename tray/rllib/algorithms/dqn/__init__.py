"""DQN (Ray's ``ray.rllib.algorithms.dqn``)."""

from .dqn import DQN, DQNConfig

__all__ = ["DQN", "DQNConfig"]
