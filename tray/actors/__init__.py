"""The actor kernel: actors, their mailboxes and refs, and the system that hosts them.

Imports nothing of tray but :mod:`tray.exceptions`, the bottom layer.
"""

from ._actor import Actor
from ._mailbox import MailboxSpec
from ._ref import ActorRef, MethodRef
from ._system import ActorSystem, DeadLetter
from ._waiter import Waiter

__all__ = ["Actor", "ActorRef", "ActorSystem", "DeadLetter", "MailboxSpec", "MethodRef", "Waiter"]
