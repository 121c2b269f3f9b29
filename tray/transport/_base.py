"""The ``Transport`` interface: how a system opens byte streams to and from its peers.

Tiny on purpose (like httpx's transports): a transport connects to an address, listens
on one, and hands out :class:`Stream` objects; everything above (frames, handshake,
heartbeats) is shared by every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["Listener", "Stream", "Transport"]


class Stream(ABC):
    """A reliable, ordered, bidirectional byte stream."""

    @abstractmethod
    async def send_messages(self, messages: list[list[Any]]) -> None:
        """Send whole messages (each a list of buffers) in order, with as few writes as possible.

        Message boundaries are given so that a fault-injecting transport can drop,
        duplicate or reorder whole messages without breaking the framing.
        """

    @abstractmethod
    async def receive_into(self, view: memoryview) -> int:
        """Fill the start of ``view``; return the number of bytes written (0 at end of stream)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the stream; the peer sees end of stream."""


class Listener(ABC):
    """Accepts connections on ``address`` until closed."""

    address: str

    @abstractmethod
    async def aclose(self) -> None: ...


Handler = Callable[[Stream], Awaitable[None]]


class Transport(ABC):
    """Opens streams for addresses of its schemes (``tcp://``, ``unix://``, ``mem://``)."""

    schemes: tuple[str, ...] = ()

    @abstractmethod
    async def connect(self, address: str) -> Stream: ...

    @abstractmethod
    async def listen(self, address: str, handler: Handler, nursery: trio.Nursery) -> Listener:
        """Listen on ``address``; run ``handler(stream)`` in ``nursery`` for each connection."""
