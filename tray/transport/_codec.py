"""Envelopes and payloads: what goes inside frames.

A message is one *envelope* frame — a msgpack array ``[kind, corr_id, dst, head,
payload, sizes]`` — followed by the frames of its out-of-band buffers. ``payload`` stays
raw bytes until the message is dispatched; ``sizes`` lists the byte length of each
out-of-band buffer, each sent as one frame or, above the chunk size, as several.

Payloads are cloudpickle with pickle protocol 5: numpy arrays, and ``bytes`` and
``memoryview`` objects of at least ``OOB_MIN`` bytes, travel out of band as separate
frames, never copied into the pickle stream.
"""

from __future__ import annotations

import io
import mmap
import pickle
from typing import Any

import cloudpickle
import msgpack

from ..exceptions import TrayInternalError
from ._frames import frame_header

__all__ = ["Envelope", "ProtocolError", "dumps", "encode", "decode_envelope", "is_plain", "loads", "Kind"]

OOB_MIN = 64 * 1024  # bytes/memoryviews at least this big are sent out of band
MAX_BUFFERS = 4096  # out-of-band buffers per message, to bound what a peer can make us hold


class Kind:
    """Message kinds (the envelope's first field)."""

    TELL = 1
    ASK = 2
    REPLY_OK = 3
    REPLY_ERR = 4
    HEARTBEAT = 5
    WATCH = 6
    DIED = 7
    SYSTEM = 8  # a system message (exit, stop, kill) to an actor
    SPAWN = 9
    LOOKUP = 10
    BULK = 11  # a message whose buffers follow on the data connection
    BYE = 12  # orderly close
    ALL = frozenset(range(1, 13))


class ProtocolError(TrayInternalError):
    """A peer sent something that is not a valid tray message; drop its connection."""


def _as_bytes(x: Any) -> bytes:
    """A big ``bytes`` value, rebuilt from its out-of-band buffer (no copy when it is a frame)."""
    return x if type(x) is bytes else bytes(x)


def alloc(n: int) -> Any:
    """A writable buffer of ``n`` bytes to receive into: big ones are anonymous mmaps,
    which the kernel zeroes lazily (a bytearray would be zero-filled up front)."""
    if n >= 1 << 20:
        return mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return bytearray(n)


def _as_memoryview(x: Any) -> memoryview:
    return memoryview(x)


class _OOBBytes:
    """Wraps a big ``bytes`` so it pickles out of band (pickle never asks about bytes)."""

    __slots__ = ("b",)

    def __init__(self, b: bytes) -> None:
        self.b = b

    def __reduce_ex__(self, protocol: Any) -> Any:
        return _as_bytes, (pickle.PickleBuffer(self.b),)


def _wrap(obj: Any, depth: int) -> Any:
    """Mark big ``bytes`` in ``obj``'s containers (a few levels deep) for out-of-band pickling."""
    t = type(obj)
    if t is bytes:
        return _OOBBytes(obj) if len(obj) >= OOB_MIN else obj
    if depth:
        if t is tuple or t is list:
            new = [_wrap(x, depth - 1) for x in obj]
            if any(a is not b for a, b in zip(new, obj)):  # noqa: B905 - per-message path; new is built from obj
                return tuple(new) if t is tuple else new
        elif t is dict:
            new_d = {k: _wrap(v, depth - 1) for k, v in obj.items()}
            if any(new_d[k] is not v for k, v in obj.items()):
                return new_d
    return obj


class _Pickler(cloudpickle.Pickler):
    """cloudpickle that also sends big ``memoryview`` objects out of band."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is memoryview and obj.nbytes >= OOB_MIN and obj.c_contiguous:
            return _as_memoryview, (pickle.PickleBuffer(obj),)
        return super().reducer_override(obj)


_SCALARS = frozenset((int, float, str, bool, type(None), complex))
_CONTAINERS = frozenset((tuple, list, dict))
_WIDE = 32  # a container with more items is not worth checking: cloudpickle handles it as fast


def is_plain(obj: Any, depth: int = 4) -> bool:
    """Is ``obj`` a little builtin data only (no classes, functions, or big buffers), which
    the C pickler alone pickles right? Small messages and values take that shortcut."""
    t = type(obj)
    if t in _SCALARS:
        return True
    if t is bytes:
        return len(obj) < OOB_MIN
    if not depth or t not in _CONTAINERS or len(obj) > _WIDE:
        return False
    if t is dict:
        for k, v in obj.items():
            if not (is_plain(k, 0) and is_plain(v, depth - 1)):
                return False
        return True
    for x in obj:
        if not is_plain(x, depth - 1):
            return False
    return True


def dumps(obj: Any) -> tuple[bytes, list[memoryview]]:
    """Pickle ``obj``; return the pickle and its out-of-band buffers (as flat byte views).

    Builtin data takes the C pickler directly; anything else goes through cloudpickle
    (classes and functions of ``__main__`` by value, buffers out of band).
    """
    if is_plain(obj):
        return pickle.dumps(obj, 5), []
    bufs: list[memoryview] = []

    def keep(pb: pickle.PickleBuffer) -> bool:
        m = pb.raw()
        if m.nbytes < 4096:
            return True  # small: in band is cheaper than a frame
        bufs.append(m)
        return False

    f = io.BytesIO()
    _Pickler(f, protocol=5, buffer_callback=keep).dump(_wrap(obj, 3))
    return f.getvalue(), bufs


def loads(data: bytes, buffers: list[Any] = ()) -> Any:  # type: ignore[assignment]
    """Unpickle a payload and its out-of-band buffers."""
    return pickle.loads(data, buffers=buffers)


_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
packb = _packb


def encode(
    kind: int, corr: int, dst: str | None, head: Any, payload: bytes | None, bufs: list[memoryview], max_chunk: int
) -> list[Any]:
    """The frames (headers included) of one message, as a list of buffers to send in order."""
    if not bufs:
        env = _packb([kind, corr, dst, head, payload, ()])
        return [frame_header(len(env)) + env]
    sizes = [b.nbytes for b in bufs]
    env = _packb([kind, corr, dst, head, payload, sizes])
    out: list[Any] = [frame_header(len(env)) + env]
    for b in bufs:
        n = b.nbytes
        if n <= max_chunk:
            out.append(frame_header(n))
            out.append(b)
        else:
            for i in range(0, n, max_chunk):
                part = b[i : i + max_chunk]
                out.append(frame_header(part.nbytes))
                out.append(part)
    return out


Envelope = list  # [kind, corr, dst, head, payload, sizes], as msgpack decodes it


def decode_envelope(frame: bytes | bytearray | memoryview, max_message: int) -> Envelope:
    """Parse and validate an envelope frame; raise :class:`ProtocolError` if it is not one."""
    try:
        env = msgpack.unpackb(frame, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds on hostile bytes
        raise ProtocolError(f"undecodable envelope: {type(exc).__name__}: {exc}") from None
    if type(env) is not list or len(env) != 6:
        raise ProtocolError("envelope is not a 6-element array")
    kind, corr, dst, _head, payload, sizes = env
    if type(kind) is not int or kind not in Kind.ALL:
        raise ProtocolError(f"unknown message kind {kind!r}")
    if type(corr) is not int or not (dst is None or type(dst) is str):
        raise ProtocolError("bad corr_id or destination")
    if payload is not None and type(payload) is not bytes:
        raise ProtocolError("payload is not bytes")
    if type(sizes) is not list or len(sizes) > MAX_BUFFERS:
        raise ProtocolError("bad buffer list")
    total = 0
    for s in sizes:
        if type(s) is not int or s < 0:
            raise ProtocolError("bad buffer size")
        total += s
    if total > max_message:
        raise ProtocolError(f"message of {total} bytes exceeds the maximum of {max_message}")
    return env
