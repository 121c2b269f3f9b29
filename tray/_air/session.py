"""The report session: the one channel from user code (a Tune trial's function, a Train
worker's loop) to whatever runs it. ``report``, ``get_checkpoint`` and ``get_context`` behind
``tune.report``/``train.report`` find the session of the calling thread (set by the runner
that started it), falling back to the process's latest session for threads user code starts.

A runner makes a :class:`Session` with a ``sink`` (called with each report's metrics dict and
checkpoint, in order; it may block for backpressure, or raise :class:`SessionStopped` to end
the user's code when the run stopped it) and a :class:`TrainContext` describing where it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from .checkpoint import Checkpoint


class SessionStopped(BaseException):
    """Raised inside user code by ``report`` when its trial or run was stopped (a BaseException
    so a user's ``except Exception`` does not swallow it); the runner catches it."""


@attrs.define
class TrainContext:
    """Where the calling code runs: Ray's ``TrainContext``/``TuneContext`` accessors."""

    experiment_name: str = ""
    trial_name: str = ""
    trial_id: str = ""
    trial_dir: str = ""
    trial_resources: Any = None
    world_size: int = 1
    world_rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    storage_path: str = ""
    metadata: dict[str, Any] = attrs.Factory(dict)

    def get_experiment_name(self) -> str:
        return self.experiment_name

    def get_trial_name(self) -> str:
        return self.trial_name

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_dir(self) -> str:
        return self.trial_dir

    def get_trial_resources(self) -> Any:
        return self.trial_resources

    def get_world_size(self) -> int:
        return self.world_size

    def get_world_rank(self) -> int:
        return self.world_rank

    def get_local_rank(self) -> int:
        return self.local_rank

    def get_local_world_size(self) -> int:
        return self.local_world_size

    def get_node_rank(self) -> int:
        return self.node_rank

    def get_storage(self) -> str:
        return self.storage_path

    def get_metadata(self) -> dict[str, Any]:
        return dict(self.metadata)


class Session:
    """One run of user code: its sink, its context and the checkpoint it starts from."""

    def __init__(self, sink: Callable[[dict[str, Any], Checkpoint | None], None], context: TrainContext | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        self._sink = sink
        self.context = context or TrainContext()
        self.loaded_checkpoint = checkpoint

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        if not isinstance(metrics, dict):
            raise TypeError(f"report() takes a dict of metrics, got {type(metrics).__name__}")
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"report(checkpoint=...) takes a Checkpoint, got {type(checkpoint).__name__}")
        for key in metrics:
            if not isinstance(key, str):
                raise TypeError(f"report(): metric names must be strings, got {key!r}")
        self._sink(metrics, checkpoint)


_local = threading.local()
_latest: Session | None = None
_lock = threading.Lock()


def init_session(session: Session) -> None:
    """Make ``session`` the calling thread's (and the process's latest)."""
    global _latest
    _local.session = session
    with _lock:
        _latest = session


def shutdown_session() -> None:
    """Forget the calling thread's session."""
    global _latest
    session = getattr(_local, "session", None)
    _local.session = None
    with _lock:
        if _latest is session:
            _latest = None


def get_session() -> Session | None:
    """The calling thread's session, else the process's latest, else None."""
    return getattr(_local, "session", None) or _latest


def _need_session(what: str) -> Session:
    session = get_session()
    if session is None:
        raise RuntimeError(f"{what} was called outside of a Tune trial or a Train worker: call it from the "
                           "function given to Tuner/tune.run or a trainer's train_loop_per_worker")
    return session


def report(metrics: dict[str, Any], *, checkpoint: Checkpoint | None = None) -> None:
    """Report ``metrics`` (and optionally a ``checkpoint`` of this step) to the runner."""
    _need_session("report()").report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this run resumes from (a restored or restarted trial), else None."""
    session = get_session()
    return session.loaded_checkpoint if session is not None else None


def get_context() -> TrainContext:
    """The calling code's context (a default one outside any run, as Ray's)."""
    session = get_session()
    return session.context if session is not None else TrainContext()
