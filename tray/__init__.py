"""tray: a distributed runtime for Python in the mould of Ray, built as one actor system on trio.

Two faces, both first class: Ray's (``@tray.remote``, ``tray.get/put/wait`` — code
written for Ray runs with ``import tray as ray``) and the actor kernel's
(``tray.Actor``, ``tray.ActorSystem``, supervision trees).
"""

import sys as _sys

if _sys.orig_argv[1:3] == ["-m", "tray.core._worker"]:  # a worker: what an idle one never uses waits for its first use
    from ._deferred import defer as _defer

    _defer("ssl", "hashlib", "hmac", "secrets", "tomllib", "zipfile", "idna", "json", "tempfile", "shutil", "uuid",
           "bz2", "lzma")

from . import exceptions  # noqa: E402 - after the worker's deferrals, which must precede trio's imports
from .actors import Actor, ActorRef, ActorSystem, DeadLetter, MailboxSpec
from .core import (
    ObjectRef,
    ObjectRefGenerator,
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_actor,
    get_gpu_ids,
    get_runtime_context,
    init,
    is_initialized,
    kill,
    method,
    nodes,
    put,
    remote,
    shutdown,
    wait,
)
from .core._api import timeline
from .core._ids import ActorID, JobID, NodeID, TaskID, WorkerID
from .supervisors import Backoff, ChildSpec, Supervisor, SupervisorSpec

__version__ = "0.1.0"


# Libraries and tray.util load on first use (as ``ray.tune`` is reachable from ``ray``):
# ``import tray`` stays fast and pulls in no optional dependency. Each value is the extra
# that installs what the library needs (None: nothing beyond tray itself).
_LAZY_SUBMODULES: dict[str, str | None] = {
    "util": None, "experimental": None, "lowlevel": None, "actor": None, "job_config": None,
    "tune": "tune", "train": "train", "data": "data", "serve": "serve", "rllib": "rllib",
    "job_submission": "default", "dashboard": "default", "debug": None,
}


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tray' has no attribute {name!r}")


__all__ = [
    "Actor",
    "ActorID",
    "ActorRef",
    "ActorSystem",
    "Backoff",
    "ChildSpec",
    "DeadLetter",
    "JobID",
    "MailboxSpec",
    "NodeID",
    "ObjectRef",
    "ObjectRefGenerator",
    "Supervisor",
    "SupervisorSpec",
    "TaskID",
    "WorkerID",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "timeline",
    "util",
    "wait",
]

from ._meta import fixup_module_metadata as _fixup  # noqa: E402 - it fixes the names bound above

_fixup(__name__, globals())
del _fixup
