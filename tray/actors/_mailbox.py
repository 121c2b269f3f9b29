"""An actor's mailbox: two FIFO lanes and an overflow policy, as pure logic without I/O.

The cell (``_cell.py``) owns the effects — waking the actor, parking blocked senders,
recording dead letters; this module only decides, so it can be tested exhaustively.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import attrs

Overflow = Literal["block", "drop_new", "drop_old", "fail"]

# What ``Mailbox.offer`` decided for a user message.
ACCEPTED = 0  # queued
FULL = 1  # not queued; the sender may wait for room ("block") or must fail ("fail")
DROPPED = 2  # not queued; it is a dead letter ("drop_new")
EVICTED = 3  # queued, and the oldest queued message was pushed out ("drop_old")


@attrs.frozen
class MailboxSpec:
    """How many user messages an actor's mailbox holds and what happens beyond that.

    ``overflow``: ``"block"`` makes senders wait for room (backpressure, the default);
    ``"drop_new"`` turns the new message into a dead letter; ``"drop_old"`` evicts the
    oldest queued message into the dead letters; ``"fail"`` raises
    :class:`~tray.exceptions.MailboxFull` in the sender.
    """

    capacity: int = attrs.field(default=1024, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)])
    overflow: Overflow = attrs.field(
        default="block", validator=attrs.validators.in_(("block", "drop_new", "drop_old", "fail"))
    )


class Mailbox:
    """A user lane bounded by a :class:`MailboxSpec` and an unbounded system lane ahead of it."""

    __slots__ = ("spec", "user", "system", "evicted")

    def __init__(self, spec: MailboxSpec) -> None:
        self.spec = spec
        self.user: deque[Any] = deque()
        self.system: deque[Any] = deque()
        self.evicted: Any = None  # the message pushed out by the last EVICTED offer

    def offer(self, msg: Any) -> int:
        """Try to queue a user message; return ACCEPTED, FULL, DROPPED or EVICTED."""
        if len(self.user) < self.spec.capacity:
            self.user.append(msg)
            return ACCEPTED
        policy = self.spec.overflow
        if policy == "drop_old":
            self.evicted = self.user.popleft()
            self.user.append(msg)
            return EVICTED
        return DROPPED if policy == "drop_new" else FULL

    def drain(self) -> list[Any]:
        """Remove and return every queued user message (the actor is going away)."""
        msgs = list(self.user)
        self.user.clear()
        return msgs

    def __len__(self) -> int:
        return len(self.user)
