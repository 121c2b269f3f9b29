"""Exceptions raised by tray, with Ray's names where Ray has one.

This module is the bottom layer of the package: it imports nothing of tray, so every
layer (the actor kernel included) can raise these.
"""

from __future__ import annotations

import traceback
from typing import Any

__all__ = [
    "ActorDiedError",
    "AskTimeoutError",
    "GetTimeoutError",
    "MailboxFull",
    "NameTakenError",
    "ObjectLostError",
    "ObjectStoreFullError",
    "OutOfMemoryError",
    "OwnerDiedError",
    "RayActorError",
    "RayError",
    "RayTaskError",
    "TaskCancelledError",
    "TaskUnschedulableError",
    "WorkerCrashedError",
]


class RayError(Exception):
    """Base class of tray's own errors (Ray's name, so ``except ray.exceptions.RayError`` ports)."""


class RayTaskError(RayError):
    """An exception raised by remote code (an actor handler or a task).

    What the caller catches is built by :meth:`from_exception`: an instance of a class
    deriving from both ``RayTaskError`` and the original exception's class, so
    ``except ValueError`` works across the boundary, and whose message carries the
    remote traceback.
    """

    cause: BaseException | None
    traceback_str: str
    where: str

    def __init__(self, where: str = "", traceback_str: str = "", cause: BaseException | None = None):
        super().__init__(where, traceback_str)
        self.where, self.traceback_str, self.cause = where, traceback_str, cause

    @classmethod
    def from_exception(cls, cause: BaseException, where: str) -> RayTaskError:
        """Wrap ``cause`` (raised in ``where``) into an instance of ``cause``'s class too."""
        tb = "".join(traceback.format_exception(cause))
        try:
            dual = _dual_class(type(cause))
            err = dual.__new__(dual)
            err.args = cause.args
            err.__dict__.update(getattr(cause, "__dict__", {}))
        except TypeError:  # a class that refuses to be a base: keep the plain form
            err = RayTaskError.__new__(RayTaskError)
            err.args = (where, tb)
        err.where, err.traceback_str, err.cause = where, tb, cause
        return err

    def __str__(self) -> str:
        cause = self.cause
        what = f"{type(cause).__name__}: {cause}" if cause is not None else self.args[0]
        return f"{what}\n\n{self.where} raised it; remote traceback:\n{self.traceback_str.rstrip()}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task_error, (self.cause, self.where, self.traceback_str))


_duals: dict[type, type] = {}


def _dual_class(base: type[BaseException]) -> type[RayTaskError]:
    if issubclass(base, RayTaskError):  # already wrapped: wrap the user's class again, not ours
        base = next(b for b in base.__bases__ if not issubclass(b, RayTaskError))
    dual = _duals.get(base)
    if dual is None:
        name = f"RayTaskError({base.__name__})"
        dual = type(name, (RayTaskError, base), {"__module__": __name__, "__qualname__": name})
        _duals[base] = dual
    return dual


def _rebuild_task_error(cause: BaseException | None, where: str, tb: str) -> RayTaskError:
    if cause is None:
        return RayTaskError(where, tb)
    err = RayTaskError.from_exception(cause, where)
    err.traceback_str = tb
    return err


class RayActorError(RayError):
    """An actor could not run a call: it died before or while handling it."""


class ActorDiedError(RayActorError):
    """The actor is dead (stopped, crashed or killed); asks to it fail with this."""


class MailboxFull(RayError):
    """A message was refused because the recipient's mailbox is at capacity."""


class AskTimeoutError(RayError, TimeoutError):
    """An ``ask`` got no reply within its ``timeout``."""


class NameTakenError(RayError, ValueError):
    """An actor name is already registered in this system."""


class GetTimeoutError(RayError, TimeoutError):
    """``tray.get`` or ``tray.wait`` ran out of time."""


class TaskCancelledError(RayError):
    """The task was cancelled (``tray.cancel``) before it could finish."""


class WorkerCrashedError(RayError):
    """The worker process running the task died (and retries, if any, ran out)."""


class TaskUnschedulableError(RayError):
    """No node can ever provide the resources a task or actor asks for."""


class ObjectLostError(RayError):
    """The object's value is gone and cannot be recovered."""


class OwnerDiedError(ObjectLostError):
    """The process that owned the object died, taking the object's metadata with it."""


class ObjectStoreFullError(RayError):
    """The object store is full and nothing can be spilled."""


class OutOfMemoryError(RayError):
    """The task's worker was killed because the machine ran low on memory."""
