"""The shared-memory object store: layout, segments, spill files, the manager actor, the client."""

from ._client import DEFAULT_INLINE_LIMIT, Blob, StoreClient, Stored
from ._layout import Packed, pack, unpack
from ._manager import STORE_NAME, ObjectStore
from ._shm import Segments
from ._spill import SpillCorrupt

__all__ = [
    "DEFAULT_INLINE_LIMIT",
    "STORE_NAME",
    "Blob",
    "ObjectStore",
    "Packed",
    "Segments",
    "SpillCorrupt",
    "StoreClient",
    "Stored",
    "pack",
    "unpack",
]
