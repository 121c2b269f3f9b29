"""The transport: how actor systems in other processes and machines reach each other.

Layered on :mod:`tray.actors` (and :mod:`tray.exceptions`) only. The kernel imports this
package lazily, when a system is given an address or first talks to a peer.
"""

from ._base import Listener, Stream, Transport
from ._codec import ProtocolError, is_plain
from ._config import NetConfig
from ._frames import FrameDecoder, FrameError, FrameTooLarge
from ._memory import FaultPlan, MemoryNetwork, MemoryTransport
from ._network import TOKEN_ENV, Network
from ._sockets import SocketTransport, parse_address

__all__ = [
    "FaultPlan",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "Listener",
    "MemoryNetwork",
    "MemoryTransport",
    "NetConfig",
    "Network",
    "ProtocolError",
    "SocketTransport",
    "Stream",
    "TOKEN_ENV",
    "Transport",
    "is_plain",
    "parse_address",
]
