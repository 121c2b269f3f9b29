"""Restart intensity: OTP's "at most ``intensity`` restarts within ``period`` seconds", without I/O."""

from __future__ import annotations

from collections import deque


class RestartIntensity:
    """A sliding window of restart times.

    As in OTP's ``add_restart``, a restart at time ``t`` still counts at ``now`` when
    ``now - t <= period`` (the window is inclusive), and the limit trips when the window
    holds *more than* ``intensity`` restarts — so ``intensity=0`` trips on the first one.
    """

    __slots__ = ("intensity", "period", "times")

    def __init__(self, intensity: int, period: float) -> None:
        self.intensity = intensity
        self.period = period
        self.times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; return True if that exceeds the limit."""
        times = self.times
        times.append(now)
        while times and now - times[0] > self.period:
            times.popleft()
        return len(times) > self.intensity

    def __len__(self) -> int:
        return len(self.times)
