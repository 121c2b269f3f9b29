"""A process's way into its node's object store: encode a value (inline or stored), read it back.

Small values stay inline (bytes that travel in messages and live in their owner's
memory); values larger than the inline threshold go into shared memory, and what
travels is a ``Stored`` marker of a few bytes that names the node holding it. Reading a
stored value maps its file and unpickles in place, so it costs the same whatever the
value's size; a value of another node is first copied into this node's store (once per
node), then read the same way. The process talks to its own node's store only: what
concerns another node's objects (free, pin, unpin) is forwarded by it.
"""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable
from typing import Any

import cloudpickle

from ..actors import ActorRef
from ..exceptions import ObjectLostError, ObjectStoreFullError, RayTaskError
from ._layout import pack
from ._shm import Segments

DEFAULT_INLINE_LIMIT = 100 * 1024  # Ray's max_direct_call_object_size


class Stored:
    """A value that lives in an object store under ``key`` (``size`` bytes of layout): the
    store of the node at address ``node`` ("": the node of whoever reads it)."""

    __slots__ = ("key", "size", "node")

    def __init__(self, key: str, size: int, node: str = "") -> None:
        self.key, self.size, self.node = key, size, node

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stored, (self.key, self.size, self.node) if self.node else (self.key, self.size))

    def __repr__(self) -> str:
        return f"Stored({self.key!r}, {self.size}, {self.node!r})"


Blob = bytes | Stored


def _unwrap(exc: RayTaskError) -> BaseException:
    """The store's own error, without the store actor's traceback around it."""
    cause = exc.cause
    return cause if isinstance(cause, (ObjectStoreFullError, ObjectLostError)) else exc


class StoreClient:
    """Writes and reads one node's store from any thread of this process but its loop's."""

    def __init__(self, manager: ActorRef, prefix: str, inline_limit: int, uid: str,
                 call: Callable[..., Any], soon: Callable[..., None], node: str = "") -> None:
        from ..transport import is_plain  # loaded already: a store serves a networked runtime

        self._is_plain = is_plain
        self.manager = manager
        self.node = node  # the address of this process's node
        self.segments = Segments(prefix)
        self.inline_limit = inline_limit
        self.uid = uid  # this process (the writer)
        self._call = call  # run a coroutine function in the loop and wait for it
        self._soon = soon  # run a function in the loop, without waiting

    def encode(self, value: Any, key: str, owner: str) -> Blob:
        """``value`` as inline bytes, or written into the store under ``key`` for ``owner``."""
        if self._is_plain(value):  # the common small value: the C pickler alone, no layout
            data = pickle.dumps(value, 5)
            if len(data) <= self.inline_limit:
                return data
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
        return Stored(key, packed.size, self.node)

    def decode(self, blob: Blob) -> Any:
        """The value of an inline blob, or of a stored one: read in place, restored first if
        it was spilled, copied into this node's store first if it lives on another node."""
        if type(blob) is not Stored:
            return cloudpickle.loads(blob)
        remote = bool(blob.node) and blob.node != self.node
        for _ in range(8):  # a file restored or fetched can go again before we map it: rare, retry
            found, value = self.segments.read(blob.key)
            if found:
                return value
            if remote:
                self._ask(self.manager.fetch.ask, blob.key, blob.size, blob.node)
            else:
                self._ask(self.manager.restore.ask, blob.key)
        raise ObjectLostError(f"object {blob.key} keeps leaving this node's memory before it can be read; "
                              f"the object store is too small for the working set")

    def free(self, blobs: list[Stored]) -> None:
        """The owner dropped these values: the stores that hold them free them."""
        self._route("free", blobs)

    def pin(self, blobs: list[Stored]) -> None:
        """A task that reads these values starts: their stores keep them in memory until ``unpin``."""
        self._route("pin", blobs)

    def unpin(self, blobs: list[Stored]) -> None:
        self._route("unpin", blobs)

    def _route(self, method: str, blobs: list[Stored]) -> None:
        """``method(keys)`` to this node's store for its keys; the other nodes' keys go to
        it too, to be forwarded to their nodes (without waiting, from any thread)."""
        by_node: dict[str, list[str]] = {}
        for blob in blobs:
            by_node.setdefault("" if blob.node == self.node else blob.node, []).append(blob.key)
        for node, keys in by_node.items():
            if node:
                self._soon(self.manager.forward.tell_nowait, node, method, keys)
            else:
                self._soon(getattr(self.manager, method).tell_nowait, keys)

    def _ask(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        try:
            return self._call(afn, *args)
        except RayTaskError as exc:
            raise _unwrap(exc) from None
