"""Tunables of a system's network layer."""

from __future__ import annotations

import attrs

__all__ = ["NetConfig"]

MiB = 1024 * 1024


@attrs.frozen
class NetConfig:
    """How a system talks to its peers.

    ``heartbeat_interval``: seconds between heartbeats on an idle connection;
    ``heartbeat_timeout``: silence after which a peer is declared dead (default 5
    intervals); ``max_frame``: largest frame accepted (bigger buffers go in chunks);
    ``max_message``: largest total of a message's buffers; ``high_water``: queued
    outgoing bytes beyond which ``tell`` waits; ``bulk_threshold``: messages whose
    buffers total at least this go over the separate data connection, in ``chunk``-byte
    chunks with ``credits`` chunks in flight.
    """

    heartbeat_interval: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    heartbeat_timeout: float | None = None
    max_frame: int = attrs.field(default=16 * MiB, validator=attrs.validators.ge(4096))
    max_message: int = 4096 * MiB
    handshake_timeout: float = 5.0
    connect_timeout: float = 10.0
    high_water: int = 8 * MiB
    bulk_threshold: int = 1 * MiB
    chunk: int = 4 * MiB
    credits: int = 4

    @property
    def silence_limit(self) -> float:
        return self.heartbeat_timeout if self.heartbeat_timeout is not None else 5 * self.heartbeat_interval
