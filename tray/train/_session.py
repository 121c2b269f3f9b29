"""The worker's side of a run: the report session behind ``train.report`` inside
``train_loop_per_worker``, and the channel that carries its events to the controller.

A report persists this rank's checkpoint files into the run's next checkpoint directory (every
rank's files merge there, as in Ray), then hands the metrics to the controller and waits until
the controller took them: each report is a step the group takes together. The loop's return
value and its exception travel the same channel, so the controller sees them in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import attrs

from .._air.checkpoint import Checkpoint
from .._air.session import Session, TrainContext, get_session
from ._storage import StorageContext

__all__ = ["Event", "EventChannel", "WorkerSession", "current_worker_session"]


@attrs.frozen
class Event:
    """What a worker tells the controller: a report, or the loop's return."""

    kind: str  # "report" | "done"
    metrics: dict[str, Any] | None = None
    checkpoint_dir_name: str | None = None  # set when this rank wrote checkpoint files
    value: Any = None  # the loop's return value ("done")


class EventChannel:
    """Loop thread -> controller, one event at a time: ``put`` returns once ``take`` took it."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[Event | BaseException, threading.Event]] = queue.Queue()

    def put(self, item: Event | BaseException) -> None:
        taken = threading.Event()
        self._q.put((item, taken))
        taken.wait()

    def take(self) -> Event:
        """Block until the loop reports, returns or raises; raise what the loop raised."""
        item, taken = self._q.get()
        taken.set()
        if isinstance(item, BaseException):
            raise item
        return item


class WorkerSession(Session):
    """A Train worker's session: reports go to ``emit`` after the checkpoint files are stored."""

    def __init__(self, context: TrainContext, checkpoint: Checkpoint | None, storage: StorageContext,
                 emit: Callable[[Event], None], dataset_shards: dict[str, Any] | None = None,
                 first_report_index: int = 0) -> None:
        super().__init__(self._on_report, context, checkpoint)
        self.storage = storage
        self.dataset_shards = dataset_shards or {}
        self.report_index = first_report_index
        self._emit = emit

    def _on_report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> None:
        name = None
        if checkpoint is not None:
            name = self.storage.checkpoint_dir_name(self.report_index)
            self.storage.persist_checkpoint_files(checkpoint, name)
        self.report_index += 1
        self._emit(Event("report", dict(metrics), name))


def current_worker_session(what: str) -> WorkerSession:
    session = get_session()
    if not isinstance(session, WorkerSession):
        msg = f"{what} is only available inside a Train worker's train_loop_per_worker (started by a trainer's fit())"
        raise RuntimeError(msg)  # noqa: TRY004 - a misuse of the API (Ray's SessionMisuseError), not a bad argument
    return session
