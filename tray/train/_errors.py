"""Train's errors, with Ray's names: ``TrainingFailedError`` (``fit()`` gave up) and
``WorkerGroupError`` (it gave up because of its workers).

When the last failure was an exception raised by the user's loop, the error ``fit()`` raises is
also an instance of that exception's class (``except ValueError`` still catches it) and carries
its remote traceback in its message.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainingFailedError", "WorkerGroupError", "training_failed"]


class TrainingFailedError(RuntimeError):
    """``fit()`` failed: the workers failed more than ``FailureConfig.max_failures`` times."""


class WorkerGroupError(TrainingFailedError):
    """Training failed because of worker errors; ``worker_failures`` maps rank -> its error."""

    def __init__(self, error_message: str, worker_failures: dict[int, BaseException] | None = None) -> None:
        super().__init__("Training failed due to worker errors:\n" + error_message)
        self._error_message = error_message
        self.worker_failures = dict(worker_failures or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (training_failed, (self._error_message, self.worker_failures))


_DUALS: dict[type, type] = {}


def training_failed(message: str, worker_failures: dict[int, BaseException]) -> WorkerGroupError:
    """A WorkerGroupError; when exactly one kind of user exception caused it, one that is also an
    instance of that exception's class."""
    causes = {type(e) for e in worker_failures.values()}
    if len(causes) == 1:
        (cls,) = causes
        if not issubclass(cls, WorkerGroupError) and issubclass(cls, Exception):
            dual = _DUALS.get(cls)
            if dual is None:
                try:
                    dual = type(f"WorkerGroupError({cls.__name__})", (WorkerGroupError, cls),
                                {"__init__": WorkerGroupError.__init__, "__str__": Exception.__str__,
                                 "__reduce__": WorkerGroupError.__reduce__, "__module__": __name__})
                except TypeError:  # a class that cannot be mixed in (layout conflict): the plain error
                    dual = WorkerGroupError
                _DUALS[cls] = dual
            return dual(message, worker_failures)
    return WorkerGroupError(message, worker_failures)
