"""``UserCallback`` (Ray Train's ``ray.train.UserCallback``): hooks the controller calls in
``fit()``'s process, given through ``RunConfig(callbacks=[...])``."""

from __future__ import annotations

from typing import Any

__all__ = ["UserCallback"]


class UserCallback:
    """Subclass and override; both hooks run in the process that called ``fit()``."""

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        """After a report round: every rank's metrics (by rank) and the round's checkpoint or None."""

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, BaseException]) -> None:
        """After the worker group failed: each failed rank's error (before a restart, or the final raise)."""
