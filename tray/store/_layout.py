"""How a value is laid out in bytes: a header, the pickle, then its out-of-band buffers.

Values are pickled with cloudpickle, protocol 5: large buffers (numpy arrays, bytes-like
data) come out of band as views of the value's own memory, so writing a value is one
copy (from the object into the segment, by ``pwritev``) and reading it is none (the
buffers handed to ``pickle.loads`` are views of the mapped segment, so an array read
back is backed by shared memory and read-only). Buffers start 64-byte aligned, as
numpy likes them.

    magic "TRY\\x01" | u32 nbuf | u64 pickle_len | nbuf x (u64 offset, u64 len) | pickle | buffers
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

import cloudpickle

MAGIC = b"TRY\x01"
ALIGN = 64
_HEAD = struct.Struct("<4sIQ")
_SPAN = struct.Struct("<QQ")
_IOV_MAX = 512  # buffers per pwritev call (the kernel allows 1024)
_MAX_WRITE = 1 << 30  # bytes per write call (Linux caps one call near 2 GiB)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Packed:
    """A value pickled with its buffers out of band, ready to be written anywhere."""

    __slots__ = ("pickled", "buffers", "offsets", "size", "header")

    def __init__(self, pickled: bytes, buffers: list[memoryview]) -> None:
        self.pickled = pickled
        self.buffers = buffers
        head = _HEAD.size + _SPAN.size * len(buffers)
        pos = head + len(pickled)
        self.offsets = []
        for buf in buffers:
            pos = -(-pos // ALIGN) * ALIGN
            self.offsets.append(pos)
            pos += buf.nbytes
        self.size = pos
        spans = b"".join(_SPAN.pack(o, b.nbytes) for o, b in zip(self.offsets, buffers, strict=True))
        self.header = _HEAD.pack(MAGIC, len(buffers), len(pickled)) + spans

    @property
    def out_of_band(self) -> int:
        """Bytes held in out-of-band buffers."""
        return sum(b.nbytes for b in self.buffers)

    def pieces(self) -> list[memoryview | bytes]:
        """The layout as a list of pieces (padding included) that concatenate to ``size`` bytes."""
        out: list[memoryview | bytes] = [self.header, self.pickled]
        pos = len(self.header) + len(self.pickled)
        for off, buf in zip(self.offsets, self.buffers, strict=True):
            if off > pos:
                out.append(bytes(off - pos))
            out.append(buf)
            pos = off + buf.nbytes
        return out

    def write_to(self, fd: int, offset: int = 0) -> None:
        """Write the layout into the file ``fd`` at ``offset`` (one copy; no Python-level join)."""
        pieces = [p for p in self.pieces() if len(p)]
        pos = offset
        while pieces:
            batch: list[memoryview | bytes] = []
            total = 0
            while pieces and len(batch) < _IOV_MAX and total < _MAX_WRITE:
                p = pieces[0]
                room = _MAX_WRITE - total
                if len(p) > room:  # split a huge buffer across calls
                    batch.append(p[:room])
                    pieces[0] = p[room:]
                    total += room
                    break
                batch.append(p)
                total += len(p)
                pieces.pop(0)
            done = os.pwritev(fd, batch, pos)
            pos += done
            if done < total:  # a short write: put back what did not go
                rest, skip = [], done
                for p in batch:
                    if skip >= len(p):
                        skip -= len(p)
                        continue
                    rest.append(memoryview(p)[skip:] if skip else p)
                    skip = 0
                pieces[:0] = rest

    def to_bytes(self) -> bytes:
        return b"".join(bytes(p) if isinstance(p, memoryview) else p for p in self.pieces())


def pack(value: Any) -> Packed:
    """Pickle ``value`` with out-of-band buffers; the error names what could not be pickled."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        pickled = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        views = [b.raw() for b in buffers]
    except Exception as exc:
        raise TypeError(f"cannot serialize {_describe(value)}: {type(exc).__name__}: {exc}") from exc
    return Packed(pickled, views)


def unpack(data: memoryview | bytes) -> Any:
    """The value laid out in ``data``; its buffers are views of ``data`` (no copy).

    A truncated or corrupted layout raises ``ValueError``."""
    view = memoryview(data).cast("B")
    if len(view) < _HEAD.size:
        raise ValueError(f"truncated tray object layout ({len(view)} bytes)")
    magic, nbuf, plen = _HEAD.unpack_from(view, 0)
    if magic != MAGIC:
        raise ValueError("not a tray object layout (bad magic)")
    pos = _HEAD.size + _SPAN.size * nbuf
    if pos + plen > len(view):
        raise ValueError("truncated tray object layout")
    buffers = []
    for i in range(nbuf):
        off, length = _SPAN.unpack_from(view, _HEAD.size + _SPAN.size * i)
        if off < pos + plen or off + length > len(view):
            raise ValueError("truncated or corrupted tray object layout (a buffer lies outside it)")
        buffers.append(view[off:off + length])
    try:
        return pickle.loads(view[pos:pos + plen], buffers=buffers)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"corrupted tray object layout: {exc}") from None
