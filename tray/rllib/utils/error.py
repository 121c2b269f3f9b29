"""RLlib's error classes (Ray's names)."""

from __future__ import annotations


class EnvError(Exception):
    """An env raised; the message names the env, the runner (or main process) and its pid."""


class UnsupportedSpaceException(Exception):
    """An env's observation or action space that the default RLModule cannot handle."""
