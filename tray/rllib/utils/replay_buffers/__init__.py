"""Replay buffers (Ray's ``ray.rllib.utils.replay_buffers``)."""

from .episode_replay_buffer import ReplayBuffer

__all__ = ["ReplayBuffer"]
