"""RLlib's error classes (Ray's names)."""

from __future__ import annotations


class EnvError(Exception):
    """An env raised; the message names the env, the runner (or main process) and its pid.

    ``pid``: the process whose env raised, so that whoever replaces that runner can tell its
    old process (still answering until its kill lands) from the new one."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class UnsupportedSpaceException(Exception):
    """An env's observation or action space that the default RLModule cannot handle."""
