"""Spill files: an object's bytes on disk while shared memory is short.

    magic "TRYS" | u64 size | u32 crc32 | the object's layout

The size and checksum make a truncated or corrupted file a clear error for that one
object (``SpillCorrupt``), never a crash and never a wrong value.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import zlib

from ..exceptions import TrayInternalError

_HEAD = struct.Struct("<4sQI")
MAGIC = b"TRYS"
_CHUNK = 64 << 20


class SpillCorrupt(TrayInternalError):
    """A spill file does not hold what was written to it."""


class SpillDiskFull(OSError):
    """The spill directory has no room."""


def _crc(view: memoryview) -> int:
    crc = 0
    for pos in range(0, len(view), _CHUNK):
        crc = zlib.crc32(view[pos:pos + _CHUNK], crc)
    return crc


def _write_all(fd: int, data: memoryview | bytes, pos: int) -> int:
    # Every view is released even when a write fails: a view left alive in the error's
    # traceback would keep the caller's mmap from closing (BufferError instead of the error).
    with memoryview(data) as view:
        done = 0
        while done < len(view):
            with view[done:done + (1 << 30)] as chunk:
                n = os.pwrite(fd, chunk, pos + done)
            done += n
    return pos + done


def spill(src: str, dst: str) -> int:
    """Copy the object file ``src`` to the spill file ``dst``; its size."""
    fd = os.open(src, os.O_RDONLY)
    try:
        mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    with mm:
        view = memoryview(mm)
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            out = os.open(dst, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            try:
                pos = _write_all(out, _HEAD.pack(MAGIC, len(view), _crc(view)), 0)
                _write_all(out, view, pos)
            finally:
                os.close(out)
        except OSError as exc:
            try:
                os.unlink(dst)
            except OSError:
                pass
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpillDiskFull(exc.errno, f"no room to spill a {len(view):,}-byte object to "
                                               f"{os.path.dirname(dst)}: the disk is full") from None
            raise
        finally:
            view.release()
        return len(mm)


def restore(src: str, dst: str) -> int:
    """Check the spill file ``src`` and copy its object into the new file ``dst``; its size."""
    try:
        fd = os.open(src, os.O_RDONLY)
    except FileNotFoundError:
        raise SpillCorrupt(f"spill file {src} is missing") from None
    try:
        length = os.fstat(fd).st_size
        if length < _HEAD.size:
            raise SpillCorrupt(f"spill file {src} is truncated ({length} bytes)")
        mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    with mm:
        view = memoryview(mm)
        body = view[_HEAD.size:]
        try:
            magic, size, crc = _HEAD.unpack_from(view, 0)
            if magic != MAGIC:
                raise SpillCorrupt(f"spill file {src} is not a tray spill file")
            if len(body) < size:
                raise SpillCorrupt(f"spill file {src} is truncated: {len(body):,} of {size:,} bytes")
            if len(body) > size:
                raise SpillCorrupt(f"spill file {src} has the wrong size: {len(body):,} bytes, not {size:,}")
            if _crc(body) != crc:
                raise SpillCorrupt(f"spill file {src} is corrupted (checksum mismatch)")
            out = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                _write_all(out, body, 0)
            except BaseException:
                os.close(out)
                os.unlink(dst)
                raise
            os.close(out)
        finally:
            body.release()
            view.release()
        return size
