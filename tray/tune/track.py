"""``tune.track.log`` — the report call of Tune's first API, which the project's seed program
uses (Ray dropped it in 1.0): ``tune.track.log(mean_accuracy=acc)`` is ``tune.report({...})``."""

from __future__ import annotations

from typing import Any

from .._air import session


def log(**metrics: Any) -> None:
    """Report ``metrics`` (keyword arguments) for the current trial."""
    session.report(metrics)


def trial_dir() -> str:
    return session.get_context().get_trial_dir()


def trial_name() -> str:
    return session.get_context().get_trial_name()


def trial_id() -> str:
    return session.get_context().get_trial_id()
