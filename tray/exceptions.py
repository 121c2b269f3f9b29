"""Exceptions raised by tray, with Ray's names where Ray has one.

This module is the bottom layer of the package: it imports nothing of tray, so every
layer (the actor kernel included) can raise these. The hierarchy::

    Exception
    └── RayError                          every error of tray's own
        ├── RayTaskError                  a task or actor method raised (its traceback inside);
        │                                 also an instance of the user's exception class
        ├── RayActorError
        │   └── ActorDiedError            the actor is gone (crashed, killed, unreachable)
        ├── MailboxFull                   a bounded mailbox refused a message
        ├── AskTimeoutError               (also TimeoutError) an ask got no reply in time
        ├── NameTakenError                (also ValueError) an actor name is in use
        │   └── ActorAlreadyExistsError   ... by a Ray-style actor in its namespace (Ray's name)
        ├── GetTimeoutError               (also TimeoutError) tray.get waited past its timeout
        ├── TaskCancelledError            tray.cancel stopped the task
        ├── WorkerCrashedError            the task's worker died, retries spent
        ├── TaskUnschedulableError        no node can ever fit the task
        ├── ObjectLostError               a value is gone and cannot be had
        │   ├── OwnerDiedError            ... because its owner died
        │   └── ObjectReconstructionFailedError   ... and running its task again failed
        ├── ObjectStoreFullError          nothing can spill to make room
        ├── OutOfMemoryError              the memory monitor killed the worker
        ├── NodeDiedError                 the node of the task (or of this process) died
        │   └── NodeDeclaredDead          the head declared this node dead
        ├── RuntimeEnvSetupError          a runtime_env could not be prepared
        └── TrayInternalError             tray's own machinery broke (a user may meet these):
            ├── transport.FrameError      a malformed frame (FrameTooLarge: over the limit)
            ├── transport.ProtocolError   a message that breaks the wire protocol
            ├── transport HandshakeError  a peer failed the token handshake
            ├── transport PeerLost        a connection ended under a message
            └── store.SpillCorrupt        a spilled object's file is missing or damaged
"""

from __future__ import annotations

import os
import traceback
from typing import Any, cast

__all__ = [
    "ActorAlreadyExistsError",
    "ActorDiedError",
    "AskTimeoutError",
    "GetTimeoutError",
    "MailboxFull",
    "NameTakenError",
    "NodeDeclaredDead",
    "NodeDiedError",
    "ObjectReconstructionFailedError",
    "ObjectLostError",
    "ObjectStoreFullError",
    "OutOfMemoryError",
    "OwnerDiedError",
    "RayActorError",
    "RayError",
    "RayTaskError",
    "RuntimeEnvSetupError",
    "TaskCancelledError",
    "TaskUnschedulableError",
    "TrayInternalError",
    "WorkerCrashedError",
]


class RayError(Exception):
    """Base class of tray's own errors (Ray's name, so ``except ray.exceptions.RayError`` ports)."""


class RayTaskError(RayError):
    """An exception raised by remote code (an actor handler or a task).

    What the caller catches is built by :meth:`from_exception`: an instance of a class
    deriving from both ``RayTaskError`` and the original exception's class, so
    ``except ValueError`` works across the boundary, and whose message carries the
    remote traceback. An error that travelled up through tasks waiting on each other
    (a task that failed inside ``tray.get`` of its child) keeps the whole ``chain``,
    outermost first, so the message reads ``parent -> child`` with each one's frames.
    """

    cause: BaseException | None
    traceback_str: str
    where: str
    chain: tuple[tuple[str, str], ...]  # (where, traceback) of each hop, outermost first

    def __init__(self, where: str = "", traceback_str: str = "", cause: BaseException | None = None):
        super().__init__(where, traceback_str)
        self.where, self.traceback_str, self.cause = where, traceback_str, cause
        self.chain = ((where, traceback_str),)

    @classmethod
    def from_exception(cls, cause: BaseException, where: str) -> RayTaskError:
        """Wrap ``cause`` (raised in ``where``) into an instance of ``cause``'s class too."""
        if isinstance(cause, RayTaskError) and cause.cause is not None:  # it came up from a task we waited on
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not f.filename.startswith(_TRAY_DIR)]
            if not frames:  # it only crossed tray's own machinery: no new hop
                return cause
            tb = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames))
            chain = ((where, tb), *cause.chain)
            cause = cause.cause
        else:
            tb = _format(cause)
            chain = ((where, tb),)
        try:
            dual = _dual_class(type(cause))
            err = dual.__new__(dual)
            err.args = cause.args
            err.__dict__.update(getattr(cause, "__dict__", {}))
        except TypeError:  # a class that refuses to be a base: keep the plain form
            err = RayTaskError.__new__(RayTaskError)
            err.args = (where, tb)
        err.where, err.traceback_str, err.cause, err.chain = where, tb, cause, chain
        return err

    def __str__(self) -> str:
        cause = self.cause
        what = f"{type(cause).__name__}: {cause}" if cause is not None else self.args[0]
        if len(self.chain) == 1:
            return f"{what}\n\n{self.where} raised it; remote traceback:\n{self.traceback_str.rstrip()}"
        hops = " -> ".join(w for w, _ in self.chain)
        tracebacks = "\n".join(f"--- {w}:\n{tb.rstrip()}" for w, tb in self.chain)
        return f"{what}\n\n{hops} raised it; remote tracebacks, outermost first:\n{tracebacks}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task_error, (self.cause, self.where, self.traceback_str, self.chain))


_TRAY_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _format(exc: BaseException) -> str:
    """``exc``'s traceback without tray's frames above the user's code (the task runner's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = next((i for i, f in enumerate(frames) if not f.filename.startswith(_TRAY_DIR)), None)
    if not user or exc.__cause__ is not None or exc.__context__ is not None:  # nothing to cut, or a chain
        return "".join(traceback.format_exception(exc))
    return "".join(traceback.format_exception(exc, limit=user - len(frames), chain=False))


_duals: dict[type, type] = {}


def _dual_class(base: type[BaseException]) -> type[RayTaskError]:
    if issubclass(base, RayTaskError):  # already wrapped: wrap the user's class again, not ours
        # a dual's other base is the user's exception class
        base = cast("type[BaseException]", next(b for b in base.__bases__ if not issubclass(b, RayTaskError)))
    dual = _duals.get(base)
    if dual is None:
        name = f"RayTaskError({base.__name__})"
        dual = type(name, (RayTaskError, base), {"__module__": __name__, "__qualname__": name})
        _duals[base] = dual
    return dual


def _rebuild_task_error(cause: BaseException | None, where: str, tb: str,
                        chain: tuple[tuple[str, str], ...] | None = None) -> RayTaskError:
    if cause is None:
        err = RayTaskError(where, tb)
    else:
        err = RayTaskError.from_exception(cause, where)
        err.traceback_str = tb
    err.chain = chain or ((where, tb),)
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


class ActorAlreadyExistsError(NameTakenError):
    """``Cls.options(name=...).remote()``: a live actor has that name in that namespace (Ray's
    class; a ValueError, as in Ray)."""


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


class NodeDiedError(RayError):
    """The node this process was attached to is gone."""


class NodeDeclaredDead(NodeDiedError):
    """The head declared this node dead (it was silent too long): it cannot rejoin as itself."""


class ObjectReconstructionFailedError(ObjectLostError):
    """A lost object could not be made again from its lineage (retries ran out, or the task
    that made it cannot be run again)."""


class RuntimeEnvSetupError(RayError):
    """A task's, actor's or job's runtime environment could not be set up (a failed pip
    install, a missing package); the message carries the tool's output."""


class TrayInternalError(RayError):
    """tray's own machinery broke: a malformed frame or message, a failed handshake, a lost
    connection, a damaged spill file. Not a bug of the user's program, but one they may see."""
