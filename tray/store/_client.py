"""A process's way into its node's object store: encode a value (inline or stored), read it back.

Small values stay inline (bytes that travel in messages and live in their owner's
memory); values larger than the inline threshold go into shared memory, and what
travels is a ``Stored`` marker of a few bytes. Reading a stored value maps its file
and unpickles in place, so it costs the same whatever the value's size.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import cloudpickle

from ..actors import ActorRef
from ..exceptions import ObjectLostError, ObjectStoreFullError, RayTaskError
from ._layout import pack
from ._shm import Segments

DEFAULT_INLINE_LIMIT = 100 * 1024  # Ray's max_direct_call_object_size


class Stored:
    """A value that lives in the node's object store under ``key`` (``size`` bytes)."""

    __slots__ = ("key", "size")

    def __init__(self, key: str, size: int) -> None:
        self.key, self.size = key, size

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stored, (self.key, self.size))

    def __repr__(self) -> str:
        return f"Stored({self.key!r}, {self.size})"


Blob = bytes | Stored


def _unwrap(exc: RayTaskError) -> BaseException:
    """The store's own error, without the store actor's traceback around it."""
    cause = exc.cause
    return cause if isinstance(cause, (ObjectStoreFullError, ObjectLostError)) else exc


class StoreClient:
    """Writes and reads one node's store from any thread of this process but its loop's."""

    def __init__(self, manager: ActorRef, prefix: str, inline_limit: int, uid: str,
                 call: Callable[..., Any], soon: Callable[..., None]) -> None:
        self.manager = manager
        self.segments = Segments(prefix)
        self.inline_limit = inline_limit
        self.uid = uid  # this process (the writer)
        self._call = call  # run a coroutine function in the loop and wait for it
        self._soon = soon  # run a function in the loop, without waiting

    def encode(self, value: Any, key: str, owner: str) -> Blob:
        """``value`` as inline bytes, or written into the store under ``key`` for ``owner``."""
        packed = pack(value)
        if packed.size <= self.inline_limit:
            return cloudpickle.dumps(value, protocol=5) if packed.buffers else packed.pickled
        self._ask(self.manager.create.ask, key, self.segments.file_size(packed), owner, self.uid)
        try:
            self.segments.write(key, packed)
        except BaseException:
            self._soon(self.manager.abort.tell_nowait, key)
            raise
        self._soon(self.manager.seal.tell_nowait, key)
        return Stored(key, packed.size)

    def decode(self, blob: Blob) -> Any:
        """The value of an inline blob, or of a stored one (read in place, restored if spilled)."""
        if type(blob) is not Stored:
            return cloudpickle.loads(blob)
        for _ in range(8):  # a restored file can be spilled again before we map it: rare, retry
            found, value = self.segments.read(blob.key)
            if found:
                return value
            self._ask(self.manager.restore.ask, blob.key)
        raise ObjectLostError(f"object {blob.key} keeps being spilled before it can be read; "
                              f"the object store is too small for the working set")

    def _ask(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            return self._call(afn, *args)
        except RayTaskError as exc:
            raise _unwrap(exc) from None
