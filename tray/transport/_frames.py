"""Length-prefixed frames: a pure encoder/decoder state machine, no I/O.

A frame is a 4-byte big-endian length followed by that many bytes. The decoder enforces
a maximum frame size *before* allocating, so a hostile length prefix costs nothing; a
large frame's body is handed out as a writable buffer that the socket can ``recv_into``
directly (one copy, kernel to final buffer).
"""

from __future__ import annotations

import struct
from typing import Any

from ..exceptions import TrayInternalError

__all__ = ["FrameDecoder", "FrameError", "FrameTooLarge", "HEADER", "frame_header"]

HEADER = 4
_LEN = struct.Struct(">I")
frame_header = _LEN.pack
"""``frame_header(n)``: the 4-byte prefix of an ``n``-byte frame."""

# Frames at least this big get their own buffer, filled in place instead of via the
# shared accumulation buffer.
BIG = 64 * 1024


class FrameError(TrayInternalError):
    """The byte stream is not a valid frame sequence; the connection must be dropped."""


class FrameTooLarge(FrameError):
    """A length prefix exceeds the maximum frame size."""


class FrameDecoder:
    """Turn an arbitrarily split byte stream into frames.

    ``feed(data)`` returns the frames completed by ``data`` (``bytes``, or a
    ``bytearray`` for big ones). While a big frame is incomplete, ``pending_view()``
    gives the unfilled rest of its body, to be filled and reported with ``filled(n)``.
    """

    __slots__ = ("max_frame", "_buf", "_big", "_big_pos", "_target")

    def __init__(self, max_frame: int) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be >= 1")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._big: bytearray | memoryview | None = None
        self._big_pos = 0
        self._target: memoryview | None = None

    def receive_next_into(self, target: memoryview) -> None:
        """Write the next frame into ``target`` instead of a new buffer, if it is exactly
        that long (how bulk chunks land in their final buffer with one copy). If that
        frame has already begun arriving, what arrived moves to ``target``."""
        big = self._big
        if big is not None:
            if len(big) == len(target) and big is not target:
                pos = self._big_pos
                target[:pos] = memoryview(big)[:pos]
                self._big = target
            return
        self._target = target

    @property
    def buffered(self) -> int:
        """Bytes held for frames not yet complete."""
        return len(self._buf) + (self._big_pos if self._big is not None else 0)

    def pending_view(self) -> memoryview | None:
        """The unfilled rest of a big frame being received, or None."""
        if self._big is None:
            return None
        return memoryview(self._big)[self._big_pos :]

    def filled(self, n: int) -> bytearray | memoryview | None:
        """``n`` more bytes were written into ``pending_view()``; return the frame if done."""
        big = self._big
        assert big is not None
        self._big_pos += n
        if self._big_pos < len(big):
            return None
        self._big = None
        return big

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        out: list[Any] = []
        mv = memoryview(data)
        if self._big is not None:
            big, pos = self._big, self._big_pos
            take = min(len(big) - pos, len(mv))
            big[pos : pos + take] = mv[:take]
            mv = mv[take:]
            if self.filled(take) is None:
                return out
            out.append(big)
        if not mv:
            return out
        buf = self._buf
        buf += mv
        n = len(buf)
        pos = 0
        maxf = self.max_frame
        unpack = _LEN.unpack_from
        while n - pos >= HEADER:
            (size,) = unpack(buf, pos)
            if size > maxf:
                self._buf = bytearray()
                raise FrameTooLarge(f"frame of {size} bytes exceeds the maximum of {maxf}")
            start = pos + HEADER
            target = self._target
            if target is not None:
                self._target = None
                if len(target) != size:
                    target = None
            if n - start >= size:
                if target is not None:
                    target[:] = buf[start : start + size]
                    out.append(target)
                else:
                    out.append(bytes(buf[start : start + size]))
                pos = start + size
            elif target is not None or size >= BIG:
                big = target if target is not None else bytearray(size)
                have = n - start
                big[:have] = buf[start:n]
                self._big, self._big_pos = big, have
                pos = n
                break
            else:
                break
        if pos:
            del buf[:pos]
        return out
