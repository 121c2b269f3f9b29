"""tray: a distributed runtime for Python in the mould of Ray, built as one actor system on trio.

Two faces, both first class: Ray's (``@tray.remote``, ``tray.get/put/wait`` — code
written for Ray runs with ``import tray as ray``) and the actor kernel's
(``tray.Actor``, ``tray.ActorSystem``, supervision trees).
"""

from . import exceptions
from .actors import Actor, ActorRef, ActorSystem, DeadLetter, MailboxSpec
from .core import (
    ObjectRef,
    ObjectRefGenerator,
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_actor,
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
from .supervisors import Backoff, ChildSpec, Supervisor, SupervisorSpec

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``tray.util`` is imported on first use (as ``ray.util`` is reachable from ``ray``):
    it pulls in asyncio, which most programs, and every worker start, can do without."""
    if name == "util":
        import importlib

        return importlib.import_module(".util", __name__)
    raise AttributeError(f"module 'tray' has no attribute {name!r}")

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "Backoff",
    "ChildSpec",
    "DeadLetter",
    "MailboxSpec",
    "ObjectRef",
    "ObjectRefGenerator",
    "Supervisor",
    "SupervisorSpec",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
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
