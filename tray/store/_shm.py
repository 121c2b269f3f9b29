"""Objects in shared memory: one file per object under ``/dev/shm``, named for its node.

Any process of the node maps a sealed object read-only and reads it in place; the
mapping outlives the file (a freed or spilled object stays readable by whoever mapped
it, and its memory returns to the system when the last mapping goes). Files are
created by the writer after the store manager reserved room for them, and removed
only by the manager (or the node's sweep when it stops).
"""

from __future__ import annotations

import errno
import mmap
import os

from ..exceptions import ObjectStoreFullError
from ._layout import Packed, unpack

SHM_DIR = "/dev/shm"


class Segments:
    """The files of one node's store: ``/dev/shm/{prefix}{key}``."""

    def __init__(self, prefix: str, directory: str = SHM_DIR) -> None:
        self.prefix = prefix
        self.directory = directory

    def path(self, key: str) -> str:
        return os.path.join(self.directory, self.prefix + key)

    def write(self, key: str, packed: Packed) -> None:
        """Create the object's file and write its layout (one copy from the value)."""
        path = self.path(key)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            packed.write_to(fd)
        except OSError as exc:
            os.close(fd)
            fd = -1
            os.unlink(path)
            if exc.errno == errno.ENOSPC:
                raise ObjectStoreFullError(
                    f"{self.directory} has no room for a {packed.size:,}-byte object: the shared-memory file "
                    f"system is smaller than tray.init(object_store_memory=...); lower that, or enlarge "
                    f"{self.directory}") from None
            raise
        finally:
            if fd >= 0:
                os.close(fd)

    def map(self, key: str) -> mmap.mmap | None:
        """The object's bytes, mapped read-only; None if the file is gone (spilled or freed)."""
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)

    def read(self, key: str) -> tuple[bool, object]:
        """``(True, value)`` read in place, or ``(False, None)`` if the file is gone."""
        mm = self.map(key)
        if mm is None:
            return False, None
        return True, unpack(memoryview(mm))

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
