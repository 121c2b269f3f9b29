"""Exponential restart backoff with jitter and reset, as pure numbers (no sleeping here)."""

from __future__ import annotations

import random
from typing import Any

import attrs

from ._errors import ConfigError


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@attrs.frozen
class Backoff:
    """Delay restarts of a child: ``min * factor**n`` for its n-th consecutive restart, capped at ``max``.

    ``jitter`` adds up to that fraction on top (never below the base, never above
    ``max``) so restarted siblings do not stampede; once a child has run ``reset_after``
    seconds (default ``max``) without crashing, its next restart is again a first one.
    """

    min: float
    max: float
    jitter: float = 0.0
    reset_after: float = attrs.field(default=attrs.Factory(lambda self: self.max, takes_self=True))
    factor: float = 2.0

    def __attrs_post_init__(self) -> None:
        for name in ("min", "max", "jitter", "reset_after", "factor"):
            value = getattr(self, name)
            if not _number(value) or value < 0:
                raise ConfigError(f"backoff.{name}", f"must be a number >= 0, got {value!r}")
        if self.max < self.min:
            raise ConfigError("backoff.max", f"must be >= min ({self.min}), got {self.max!r}")
        if self.factor < 1:
            raise ConfigError("backoff.factor", f"must be >= 1, got {self.factor!r}")

    def base(self, attempt: int) -> float:
        """The delay before restart number ``attempt`` (0-based), before jitter."""
        try:
            return min(self.max, self.min * self.factor**attempt)
        except OverflowError:
            return self.max

    def delay(self, attempt: int, u: float) -> float:
        """The jittered delay for ``attempt``, given ``u`` drawn uniformly from [0, 1)."""
        return min(self.max, self.base(attempt) * (1.0 + self.jitter * u))


class BackoffState:
    """One child's backoff: how many consecutive restarts, and since when it has been up."""

    __slots__ = ("backoff", "rng", "attempt", "started_at")

    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self.backoff = backoff
        self.rng = rng
        self.attempt = 0
        self.started_at: float | None = None

    def started(self, now: float) -> None:
        """The child (re)started at ``now``."""
        self.started_at = now

    def next_delay(self, now: float) -> float:
        """The child failed at ``now``: how long to wait before restarting it."""
        if self.started_at is not None and now - self.started_at >= self.backoff.reset_after:
            self.attempt = 0
        delay = self.backoff.delay(self.attempt, self.rng.random())
        self.attempt += 1
        return delay
