"""tray: a distributed runtime for Python in the mould of Ray, built as one actor system on trio."""

from . import exceptions
from .actors import Actor, ActorRef, ActorSystem, DeadLetter, MailboxSpec
from .supervisors import Backoff, ChildSpec, Supervisor, SupervisorSpec

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "Backoff",
    "ChildSpec",
    "DeadLetter",
    "MailboxSpec",
    "Supervisor",
    "SupervisorSpec",
    "exceptions",
]
