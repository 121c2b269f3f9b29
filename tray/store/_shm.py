"""Objects in shared memory: one file per object under ``/dev/shm``, named for its node.

Any process of the node maps a sealed object read-only and reads it in place; the
mapping outlives the file's name (a freed or spilled object stays readable by whoever
mapped it). Files are created by the writer after the store manager reserved room
for them, and removed or recycled only by the manager (or the node's sweep).

Recycling: writing into a fresh tmpfs file costs the kernel a page allocation and a
zeroing per page, about half the cost of a large put; so the manager keeps the files
of freed objects in a small pool and hands one to the next writer of a similar size.
That is safe only if nobody still maps the old object, which ``flock`` tells: a reader
holds a shared lock for as long as its mapping lives (the mapping keeps a duplicate of
the locked descriptor), and a file is recycled, or rewritten, only under an exclusive
lock. Each file starts with a 64-byte header naming its object, so a reader that opened
a file just before it was recycled sees that it now holds another object.

    magic "TRYSEG01" | 16-byte digest of the key | zero padding to 64 | the value's layout
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os

from ..exceptions import ObjectStoreFullError
from ._layout import Packed, unpack

SHM_DIR = "/dev/shm"
HEADER = 64
_MAGIC = b"TRYSEG01"


def header(key: str) -> bytes:
    """The first ``HEADER`` bytes of the file of ``key``."""
    return (_MAGIC + hashlib.blake2b(key.encode(), digest_size=16).digest()).ljust(HEADER, b"\0")


def try_lock(fd: int, exclusive: bool) -> bool:
    """Take a shared or exclusive ``flock`` on ``fd`` without waiting; whether it was taken."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Segments:
    """The files of one node's store: ``/dev/shm/{prefix}{key}``."""

    def __init__(self, prefix: str, directory: str = SHM_DIR) -> None:
        self.prefix = prefix
        self.directory = directory

    def path(self, key: str) -> str:
        return os.path.join(self.directory, self.prefix + key)

    @staticmethod
    def file_size(packed: Packed) -> int:
        """Bytes the object's file takes (what the manager accounts)."""
        return HEADER + packed.size

    def create(self, name: str, size: int) -> int:
        """A descriptor of the new ``size``-byte file ``name``, open for writing. If the
        manager handed us a recycled file under this name, it is reused in place, unless a
        reader still maps it: then it is replaced by a new one."""
        path = self.path(name)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_RDWR)
            if not try_lock(fd, exclusive=True):
                os.close(fd)
                os.unlink(path)
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            raise self.no_room(exc, size) from None
        return fd

    def no_room(self, exc: OSError, size: int) -> OSError | ObjectStoreFullError:
        """``exc`` (from writing a ``size``-byte file), as the error to raise."""
        if exc.errno != errno.ENOSPC:
            return exc
        return ObjectStoreFullError(
            f"{self.directory} has no room for a {size:,}-byte object: the shared-memory file system is "
            f"smaller than tray.init(object_store_memory=...); lower that, or enlarge {self.directory}")

    def write(self, key: str, packed: Packed) -> None:
        """Write the object's file (one copy from the value)."""
        size = self.file_size(packed)
        fd = self.create(key, size)
        try:
            os.pwrite(fd, header(key), 0)
            packed.write_to(fd, HEADER)
        except OSError as exc:
            os.unlink(self.path(key))
            raise self.no_room(exc, size) from None
        finally:
            os.close(fd)

    def holds(self, name: str, key: str, size: int) -> bool:
        """Is the file ``name`` ``size`` bytes long, with the header of ``key``?"""
        try:
            fd = os.open(self.path(name), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            return os.fstat(fd).st_size == size and os.pread(fd, HEADER, 0) == header(key)
        finally:
            os.close(fd)

    def map_range(self, key: str, offset: int, length: int) -> memoryview | None:
        """Bytes ``offset`` to ``offset + length`` of the object's file (header included),
        mapped read-only and share-locked (so the file is not recycled while the view
        lives, e.g. while it is being sent); None if the file is gone."""
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if not try_lock(fd, exclusive=False):
                return None
            if offset + length > os.fstat(fd).st_size:
                raise ValueError(f"bytes {offset:,}+{length:,} lie beyond the end of object {key}")
            start = offset - offset % mmap.ALLOCATIONGRANULARITY
            mm = mmap.mmap(fd, offset + length - start, prot=mmap.PROT_READ, offset=start)
        finally:
            os.close(fd)
        return memoryview(mm)[offset - start:]

    def map(self, key: str) -> memoryview | None:
        """The object's layout, mapped read-only and share-locked for as long as it is
        referenced; None if the file is gone (spilled or freed) or holds another object."""
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if not try_lock(fd, exclusive=False):  # being rewritten: it is not ours any more
                return None
            if os.pread(fd, HEADER, 0) != header(key):
                return None
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)  # keeps a duplicate of fd: the lock lives on
        finally:
            os.close(fd)
        return memoryview(mm)[HEADER:]

    def read(self, key: str) -> tuple[bool, object]:
        """``(True, value)`` read in place, or ``(False, None)`` if the file is gone."""
        view = self.map(key)
        if view is None:
            return False, None
        return True, unpack(view)

    def recycle(self, key: str, pooled: str) -> bool:
        """Rename a freed object's file to ``pooled`` for reuse, if nobody maps it."""
        try:
            fd = os.open(self.path(key), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            if not try_lock(fd, exclusive=True):
                return False
            os.rename(self.path(key), self.path(pooled))
            return True
        finally:
            os.close(fd)

    def unlink(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass

    def sweep(self) -> int:
        """Remove every file of this store; how many there were."""
        count = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            if name.startswith(self.prefix):
                try:
                    os.unlink(os.path.join(self.directory, name))
                    count += 1
                except OSError:
                    pass
        return count
