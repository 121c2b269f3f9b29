"""Ray's default autoscaling policy, as pure functions of the metrics history.

The controller samples, each tick, how many requests every handle has queued or running for a
deployment; :func:`average_load` turns the last ``look_back_period_s`` of those samples into one
number, and :func:`decide` turns it into a replica target. The delays count consecutive ticks
that want the same direction, as Ray's ``replica_queue_length_autoscaling_policy`` does, so a
brief spike neither scales up nor a brief lull down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from .config import AutoscalingConfig


@attrs.frozen
class Decision:
    target: int  # how many replicas the deployment should have now
    counter: int  # consecutive ticks wanting up (> 0) or down (< 0); carried to the next call


def desired_replicas(cfg: AutoscalingConfig, total_requests: float, running: int) -> int:
    """The replica count that brings the load per replica to the target (clamped to the bounds)."""
    if running == 0:
        return max(cfg.min_replicas, 1 if total_requests > 0 else 0)
    error_ratio = total_requests / (cfg.target_ongoing_requests * running)
    factor = cfg.upscale_factor() if error_ratio >= 1 else cfg.downscale_factor()
    smoothed = 1 + (error_ratio - 1) * factor
    desired = math.ceil(running * smoothed)
    if error_ratio == 0 and desired == running and desired >= 1:
        desired -= 1  # ceil would keep a small deployment from ever reaching zero load's size
    return max(cfg.min_replicas, min(cfg.max_replicas, desired))


def decide(cfg: AutoscalingConfig, total_requests: float, running: int, current_target: int, counter: int,
           tick_s: float) -> Decision:
    """One tick of the policy: move the target only after ``upscale_delay_s`` (or
    ``downscale_delay_s``) of ticks that all wanted to move that way."""
    clamped = max(cfg.min_replicas, min(cfg.max_replicas, current_target))
    if running == 0:
        # scaling from zero waits for nothing: a request is waiting
        if total_requests > 0:
            return Decision(max(clamped, 1), 0)
        return Decision(clamped, 0)
    desired = desired_replicas(cfg, total_requests, running)
    tick_s = max(tick_s, 1e-6)
    if desired > clamped:
        counter = max(counter, 0) + 1
        if counter > int(cfg.upscale_delay_s / tick_s):
            return Decision(desired, 0)
        return Decision(clamped, counter)
    if desired < clamped:
        counter = min(counter, 0) - 1
        if counter < -int(cfg.downscale_delay_s / tick_s):
            return Decision(desired, 0)
        return Decision(clamped, counter)
    return Decision(clamped, 0)


def average_load(samples: Mapping[str, Iterable[tuple[float, float]]], now: float, look_back_s: float) -> float:
    """Sum over handles of each handle's mean (queued + running) over the look-back window.

    ``samples``: per handle, ``(timestamp, load)`` pairs. A handle whose samples all predate
    the window counts its latest value, so a handle that stopped reporting because it is idle
    (load 0) is not mistaken for one still busy, nor one busy but slow to report for idle."""
    total = 0.0
    for series in samples.values():
        pts = list(series)
        if not pts:
            continue
        recent = [v for (t, v) in pts if t >= now - look_back_s]
        total += sum(recent) / len(recent) if recent else pts[-1][1]
    return total
