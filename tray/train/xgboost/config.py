"""``XGBoostConfig``: the worker group joined by XGBoost's collective, as Ray Train does it.

Rank 0 starts a ``RabitTracker`` on its node (at the group's rendezvous port) while the backend is
set up; the training loop then runs inside ``xgboost.collective.CommunicatorContext`` on every rank
(the communicator is per thread, so it is entered in the loop's own thread), so ``xgboost.train``
in the loop builds one model from every worker's shard.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs

from ..._air.session import TrainContext
from .._worker import run_loop
from ..backend import Backend, BackendConfig, WorkerSlot

__all__ = ["XGBoostConfig"]

_TRACKER: Any = None  # rank 0's tracker lives as long as its worker process


def _check_communicator(_: Any, __: Any, value: str) -> None:
    if value != "rabit":
        raise ValueError(f"XGBoostConfig(xgboost_communicator=...) must be 'rabit' (the CPU collective), got {value!r}")


@attrs.define
class XGBoostConfig(BackendConfig):
    """``xgboost_communicator``: "rabit"; ``timeout_s``: how long a collective operation (and the
    group's start at the tracker) may wait for the other ranks."""

    xgboost_communicator: str = attrs.field(default="rabit", validator=_check_communicator)
    timeout_s: int = 1800

    @property
    def backend_cls(self) -> type[Backend]:
        return _XGBoostBackend

    def make_backend(self) -> Backend:
        return _XGBoostBackend(self.timeout_s)


@attrs.frozen
class _XGBoostBackend(Backend):
    timeout_s: int

    needs_rendezvous_port = True
    preload_modules = ("xgboost",)

    def worker_env(self, slots: list[WorkerSlot], port: int | None, use_gpu: bool) -> list[dict[str, str]]:
        return [{"TRAY_XGB_TRACKER_URI": slots[0].node_ip, "TRAY_XGB_TRACKER_PORT": str(port),
                 "TRAY_XGB_TASK_ID": str(s.rank), "TRAY_XGB_WORLD_SIZE": str(len(slots)),
                 "TRAY_XGB_TIMEOUT": str(self.timeout_s)} for s in slots]

    def on_worker_start(self, context: TrainContext) -> None:
        global _TRACKER
        if context.world_rank != 0:
            return
        from xgboost.tracker import RabitTracker

        tracker = RabitTracker(n_workers=int(os.environ["TRAY_XGB_WORLD_SIZE"]),
                               host_ip=os.environ["TRAY_XGB_TRACKER_URI"],
                               port=int(os.environ["TRAY_XGB_TRACKER_PORT"]), sortby="task",
                               timeout=int(os.environ["TRAY_XGB_TIMEOUT"]))
        tracker.start()  # listening before any rank's loop starts: setup_backend ends before start()
        _TRACKER = tracker


def communicator_args() -> dict[str, Any] | None:
    """This worker's arguments to ``xgboost.collective`` (None outside a distributed group)."""
    if "TRAY_XGB_TRACKER_PORT" not in os.environ:
        return None
    return {"dmlc_tracker_uri": os.environ["TRAY_XGB_TRACKER_URI"],
            "dmlc_tracker_port": int(os.environ["TRAY_XGB_TRACKER_PORT"]),
            "dmlc_task_id": os.environ["TRAY_XGB_TASK_ID"], "dmlc_timeout": int(os.environ["TRAY_XGB_TIMEOUT"])}


@attrs.frozen
class CollectiveLoop:
    """The user's loop run inside the worker's XGBoost communicator (what the workers are sent)."""

    fn: Callable[..., Any]

    def __call__(self, config: dict[str, Any]) -> Any:
        args = communicator_args()
        if args is None:  # num_workers=0: the loop in the calling process, no collective
            return run_loop(self.fn, config)
        from xgboost import collective

        with collective.CommunicatorContext(**args):
            return run_loop(self.fn, config)
