"""tray: a distributed runtime for Python in the mould of Ray, built as one actor system on trio."""

from . import exceptions
from .actors import Actor, ActorRef, ActorSystem, DeadLetter, MailboxSpec

__version__ = "0.1.0"

__all__ = ["Actor", "ActorRef", "ActorSystem", "DeadLetter", "MailboxSpec", "exceptions"]
