"""Task events: the tasks and actor calls this process's owner submitted, and how each fared.

The owner notes each change at a point where it already handles the task (submission,
lease, dispatch, reply), so recording costs no message and well under a microsecond;
``tray.util.state.list_tasks`` asks every process for its rows when someone looks. Live
tasks are all kept, finished ones the newest ``MAX_FINISHED``. States and keys are Ray's
(``ray.util.state``'s ``TaskState``); a task's row is its latest attempt (an actor's
creation: a row per incarnation).

Records hold only strings, numbers and None, in dicts and tuples, which the garbage
collector does not track: thousands of them cost no collection time.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..exceptions import (
    ActorDiedError,
    ObjectLostError,
    OutOfMemoryError,
    OwnerDiedError,
    RayTaskError,
    TaskCancelledError,
    TaskUnschedulableError,
    WorkerCrashedError,
)

MAX_FINISHED = 10_000
MAX_MESSAGE = 4096  # characters of an error message kept (its end: the exception itself)

PENDING_ARGS_AVAIL = "PENDING_ARGS_AVAIL"  # waiting for its ObjectRef arguments
PENDING_NODE_ASSIGNMENT = "PENDING_NODE_ASSIGNMENT"  # waiting for a lease on a worker
PENDING_ACTOR = "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY"  # an actor call waiting its turn, or its actor
SUBMITTED_TO_WORKER = "SUBMITTED_TO_WORKER"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
PAUSED_AT_BREAKPOINT = "PAUSED_AT_BREAKPOINT"  # running, stopped in the debugger (tray.debug)

paused_threads: set[int] = set()  # in a worker: the threads stopped in the debugger now (their idents)

NORMAL_TASK, ACTOR_TASK, ACTOR_CREATION_TASK = "NORMAL_TASK", "ACTOR_TASK", "ACTOR_CREATION_TASK"

# Ray's ErrorType names, most specific class first.
_ERROR_TYPES: tuple[tuple[type[BaseException], str], ...] = (
    (TaskCancelledError, "TASK_CANCELLED"), (OutOfMemoryError, "OUT_OF_MEMORY"),
    (WorkerCrashedError, "WORKER_DIED"), (ActorDiedError, "ACTOR_DIED"), (OwnerDiedError, "OWNER_DIED"),
    (ObjectLostError, "OBJECT_LOST"), (TaskUnschedulableError, "TASK_UNSCHEDULABLE_ERROR"),
    (RayTaskError, "TASK_EXECUTION_EXCEPTION"),
)


def error_type(err: BaseException) -> str:
    """Ray's name for why a task failed (an unexpected class: its own name)."""
    for cls, name in _ERROR_TYPES:
        if isinstance(err, cls):
            return name
    return type(err).__name__


ROW_KEYS = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
            "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type", "error_message",
            "creation_time_ms", "start_time_ms", "end_time_ms")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def record(task_id: str, name: str, kind: str, job_id: str, actor_id: str | None, parent: str | None,
           state: str) -> dict[str, Any]:
    """A live task's row (``ROW_KEYS``, in order), updated in place as the task goes."""
    return {"task_id": task_id, "attempt_number": 0, "name": name, "state": state, "job_id": job_id,
            "actor_id": actor_id, "type": kind, "func_or_class_name": name, "parent_task_id": parent,
            "node_id": None, "worker_id": None, "worker_pid": None, "error_type": None, "error_message": None,
            "creation_time_ms": _now_ms(), "start_time_ms": None, "end_time_ms": None}


def dispatched(rec: dict[str, Any], node_id: str | None, worker_id: str | None, pid: int | None) -> None:
    """Sent to a worker: ``node_id``, ``worker_id``, ``pid`` say which."""
    rec["state"], rec["node_id"], rec["worker_id"], rec["worker_pid"] = SUBMITTED_TO_WORKER, node_id, worker_id, pid
    rec["start_time_ms"] = _now_ms()


class TaskLog:
    """The owner's task records.

    A task or an actor's creation has a live record, keyed by what the owner holds for it
    (its spec, the actor's queue). An actor call, the hottest path, has only its times
    here: where it is (waiting in the owner or sent) the owner's actor queues say when
    someone asks (:meth:`call_row`). A finished one of either is kept as a tuple.
    """

    def __init__(self, job_id: Callable[[], str], max_finished: int = MAX_FINISHED) -> None:
        self.job_id = job_id  # a worker's job is known once the node gives it one
        self.live: dict[object, dict[str, Any]] = {}
        self.calls: dict[Any, int] = {}  # actor calls not done: when submitted
        self.sent: dict[Any, int] = {}  # ... when sent, if they waited in the owner first
        self.retries: dict[Any, int] = {}  # ... how often sent again to a restarted actor
        self.finished: deque[tuple] = deque(maxlen=max_finished)

    def add(self, key: object, rec: dict[str, Any]) -> dict[str, Any]:
        self.live[key] = rec
        return rec

    def end(self, key: object, err: BaseException | None = None) -> None:
        """FINISHED, or FAILED with ``err``; a second end of the same task is a no-op."""
        rec = self.live.pop(key, None)
        if rec is None:
            return
        rec["end_time_ms"] = _now_ms()
        if err is None:
            rec["state"] = FINISHED
        else:
            rec["state"], rec["error_type"], rec["error_message"] = FAILED, error_type(err), _message(err)
        self.finished.append(tuple(rec.values()))

    # ------------------------------------------------------------ actor calls

    def call_submitted(self, call: Any) -> None:
        self.calls[call] = _now_ms()

    def call_sent(self, call: Any) -> None:
        """A call that waited in the owner went to its actor (one sent at once, when submitted)."""
        self.sent[call] = _now_ms()

    def call_retried(self, call: Any) -> None:
        """A call lost with its actor waits for the actor's next incarnation."""
        self.retries[call] = self.retries.get(call, 0) + 1
        self.sent.pop(call, None)

    def call_ended(self, call: Any, err: BaseException | None = None, sent: bool = True) -> None:
        """FINISHED, or FAILED with ``err`` (``sent``: after it went to its actor)."""
        created = self.calls.pop(call, None)
        if created is None:
            return
        started: int | None = self.sent.pop(call, created)  # one sent at once was sent when submitted
        if not sent:
            started = None
        attempt = self.retries.pop(call, 0)
        state, kind, text = (FINISHED, None, None) if err is None else (FAILED, error_type(err), _message(err))
        self.finished.append((call_task_id(call), attempt, call.method, state, self.job_id(), call.actor_id,
                              ACTOR_TASK, call.method, None, None, None, None, kind, text, created, started,
                              _now_ms()))

    def call_values(self, call: Any, state: str) -> tuple:
        """The row (values in ``ROW_KEYS`` order) of a call not done yet: ``state`` is where
        the owner's queues have it."""
        created = self.calls.get(call)
        started = self.sent.get(call, created) if state == SUBMITTED_TO_WORKER else None
        return (call_task_id(call), self.retries.get(call, 0), call.method, state, self.job_id(), call.actor_id,
                ACTOR_TASK, call.method, None, None, None, None, None, None, created, started, None)

    def call_row(self, call: Any, state: str) -> dict[str, Any]:
        """:meth:`call_values` as a row."""
        return dict(zip(ROW_KEYS, self.call_values(call, state), strict=True))

    def values(self) -> list[tuple]:
        """The finished rows' values, oldest first, then the live tasks' and actor creations'
        (live calls: ``call_values``); each in ``ROW_KEYS`` order."""
        live = list(self.live.values())  # (a caller's thread adds a lane task's row: _lanes)
        return [*self.finished, *(tuple(r.values()) for r in live)]

    def rows(self) -> list[dict[str, Any]]:
        """:meth:`values` as rows."""
        return [dict(zip(ROW_KEYS, v, strict=True)) for v in self.values()]


def pack(values: list[tuple]) -> bytes:
    """Rows' values for the wire: one pickle of tuples (their strings shared), which costs a
    fraction of sending 10,000 dicts through the transport's codec."""
    return pickle.dumps(values, 5)


def unpack(packed: bytes) -> list[dict[str, Any]]:
    """The rows :func:`pack` packed."""
    return [dict(zip(ROW_KEYS, v, strict=True)) for v in pickle.loads(packed)]


def call_task_id(call: Any) -> str:
    """A call's task id: its first result's id, as a task's (a streaming call: its stream's;
    a call without results: its own)."""
    if call.return_ids:
        return call.return_ids[0]
    return call.stream.task_id if call.stream is not None else f"call-{id(call):x}"


def _message(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= MAX_MESSAGE else "..." + text[-MAX_MESSAGE:]
