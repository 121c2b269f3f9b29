"""Objects and their references: ``ObjectRef`` and the per-process object table.

Ownership follows Ray (NSDI'21): the process that creates a ref owns the object; it
keeps the value (serialized, so every ``get`` returns a fresh copy of an immutable
value), counts its own refs, and tracks the processes that borrowed one. A value is
freed when none remains anywhere. Other processes reach the owner through its
``OwnerActor``.

The table is shared by the user's threads and the runtime's trio thread, so it is
guarded by one lock; ``ObjectRef.__del__`` never takes it (it may run inside it, from
the garbage collector) but queues the release for the next table operation.

An actor handle's lifetime rides on the same counting: each counted handle holds a
*token*, an ObjectRef with no value whose id is ``HANDLE`` + the actor's id, owned by
the actor's creator. Tokens travel, pin and are borrowed as any ref; when the creator's
token is unused anywhere (after a short grace, for borrow notes still on their way) the
actor ends (Ray's distributed actor-handle counting).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import cloudpickle

from ..exceptions import ObjectLostError
from ..store import Stored
from . import _process

if TYPE_CHECKING:
    from ..actors import ActorRef
    from ..store import Blob, StoreClient

log = logging.getLogger("tray.core")

PENDING, READY, FAILED = 0, 1, 2
HANDLE = "@"  # the ids of actor-handle tokens start with it (never an object's: those start with hex)


def dumps(value: Any) -> bytes:
    """Serialize a value for the object table; the error names what could not be pickled."""
    try:
        return cloudpickle.dumps(value, protocol=5)
    except Exception as exc:
        raise TypeError(f"cannot serialize {_short(value)}: {type(exc).__name__}: {exc}") from exc


def loads(blob: bytes) -> Any:
    return cloudpickle.loads(blob)


def _freed(oid: str) -> BaseException:
    return ObjectLostError(f"object {oid} was freed by its owner (this process) once no reference to it was left; "
                           f"a copy of its ref made outside tray (cloudpickle.dumps, a file) does not keep it")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Entry:
    """One object as this process knows it."""

    __slots__ = ("state", "blob", "error", "waiters", "refs", "borrowers", "pins", "owner", "borrowed", "contains",
                 "ending")

    def __init__(self, owner: ActorRef | None) -> None:
        self.state = PENDING
        self.blob: Blob | None = None  # inline bytes, or where the node's store holds it
        self.error: BaseException | None = None
        self.waiters: list[Callable[[], object]] = []
        self.refs = 0  # live ObjectRef instances in this process
        self.borrowers: set[str] = set()  # processes (system uids) holding refs we own
        self.pins = 0  # in-flight tasks that carry this ref
        self.owner = owner  # None: we own it
        self.borrowed = False  # we told the owner we hold refs to it
        self.contains: list[str] | None = None  # refs inside its value (a put's), pinned while it lives
        self.ending = False  # an actor-handle token of ours, unused: its actor ends after a grace


class ObjectTable:
    """Every object this process owns or borrows, by id."""

    def __init__(self, prefix: str, owner_ref_getter: Callable[[], ActorRef | None]) -> None:
        self.prefix = prefix
        self._seq = itertools.count(1)
        self.entries: dict[str, Entry] = {}
        self.lock = threading.Lock()
        self._released: deque[str] = deque()
        self._owner_ref = owner_ref_getter
        # set by the runtime: called (outside the lock) when a borrowed object's last ref goes
        self.on_unborrow: Callable[[str, ActorRef], None] = lambda oid, owner: None
        self.on_borrow: Callable[[str, ActorRef], None] = lambda oid, owner: None
        # set by the runtime: the node's store, this process's uid, and how to free stored values
        self.store: StoreClient | None = None
        self.uid = ""
        self.on_free: Callable[[list[Stored]], None] = lambda blobs: None
        self.watchers: list[Callable[[], None]] = []  # called when any object resolves (tray.wait)
        self.on_release: Callable[[], None] = lambda: None  # a release was queued: collect soon
        # set by the owner: tokens of ours (actor handles) no process uses now; it calls
        # ``end_unused_handle`` for each after a grace
        self.on_handles_unused: Callable[[list[str]], None] = lambda oids: None
        self._unborrow: list[tuple[str, ActorRef]] = []  # filled under the lock, sent after it
        self._unused_handles: list[str] = []

    # ----------------------------------------------------------------- values

    def encode(self, value: Any, key: str, owner: str | None = None) -> Blob:
        """``value`` serialized: inline bytes, or (if large) stored under ``key`` for ``owner``
        (default: us)."""
        if self.store is None:
            return dumps(value)
        return self.store.encode(value, key, owner or self.uid)

    def decode(self, blob: Blob) -> Any:
        if type(blob) is Stored:
            assert self.store is not None
            return self.store.decode(blob)
        return loads(blob)  # type: ignore[arg-type]  # not Stored: bytes

    def encode_collecting(self, value: Any, key: str, owner: str | None = None) -> tuple[Blob, list[ObjectRef]]:
        """Encode ``value`` and say which ObjectRefs it contains (they must be pinned)."""
        found: list[ObjectRef]
        _collecting.refs = found = []
        try:
            return self.encode(value, key, owner), found
        finally:
            _collecting.refs = None

    def _forget_if_unused(self, oid: str, entry: Entry, freed: list[Stored]) -> bool:
        """Under the lock: forget ``oid`` if no ref, pin or borrower keeps it; a stored value
        we own goes on ``freed`` (the caller frees it after the lock, with ``_settle``), a
        borrowed one is given back to its owner, the refs inside its value are unpinned,
        and an actor-handle token of ours is kept for its grace. Whether it was forgotten."""
        if entry.refs > 0 or entry.pins > 0 or entry.borrowers:
            return False
        if entry.owner is None and oid[0] == HANDLE:
            if not entry.ending:
                entry.ending = True
                self._unused_handles.append(oid)
            return False
        del self.entries[oid]
        if entry.owner is None:
            if type(entry.blob) is Stored:
                freed.append(entry.blob)
        elif entry.borrowed:
            self._unborrow.append((oid, entry.owner))
        if entry.contains:
            for inner in entry.contains:
                held = self.entries.get(inner)
                if held is not None:
                    held.pins -= 1
                    self._forget_if_unused(inner, held, freed)
        return True

    def _settle(self, freed: list[Stored]) -> None:
        """After the lock: tell what forgetting decided (frees, unborrows, unused handles)."""
        unborrow: list[tuple[str, ActorRef]] = []
        unused: list[str] = []
        if self._unborrow or self._unused_handles:
            with self.lock:
                unborrow, self._unborrow = self._unborrow, []
                unused, self._unused_handles = self._unused_handles, []
        for oid, owner in unborrow:
            self.on_unborrow(oid, owner)
        if unused:
            self.on_handles_unused(unused)
        if freed:
            self.on_free(freed)

    def end_unused_handle(self, oid: str) -> bool:
        """An actor-handle token of ours, unused when its grace began: forget it if it still
        is (the actor then ends); False if a handle came back meanwhile."""
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None or not entry.ending:
                return False
            entry.ending = False
            if entry.refs > 0 or entry.pins > 0 or entry.borrowers:
                return False
            del self.entries[oid]
            return True

    def add_handle(self, actor_id: str) -> str:
        """The token of an actor we create (see the module docstring): its id."""
        oid = HANDLE + actor_id
        with self.lock:
            entry = self.entries[oid] = Entry(None)
            entry.state = READY
        return oid

    def hold_inside(self, oid: str, inner: list[str]) -> None:
        """The value of our object ``oid`` contains refs to ``inner``: they live while it does."""
        if not inner:
            return
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None:
                return
            entry.contains = inner if entry.contains is None else entry.contains + inner
            for i in inner:
                held = self.entries.get(i)
                if held is not None:
                    held.pins += 1

    def new_id(self) -> str:
        return f"{self.prefix}{next(self._seq):x}"

    # ------------------------------------------------------------- references

    def add_owned(self, oid: str) -> Entry:
        with self.lock:
            entry = self.entries[oid] = Entry(None)
        return entry

    def incref(self, oid: str, owner: ActorRef | None) -> None:
        borrow = None
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None:  # a ref that arrived from another process
                entry = self.entries[oid] = Entry(owner)
                if owner is None:  # ours, come back after we freed it: a get must fail, not wait forever
                    entry.state, entry.error = FAILED, _freed(oid)
            entry.refs += 1
            if entry.owner is not None and not entry.borrowed:
                entry.borrowed = True
                borrow = entry.owner
        if borrow is not None:
            self.on_borrow(oid, borrow)

    def release_later(self, oid: str) -> None:
        """Called by ``ObjectRef.__del__``: lock-free, applied by the next ``collect``."""
        released = self._released
        released.append(oid)
        if len(released) == 1:
            self.on_release()

    def collect(self) -> None:
        """Apply queued releases; free what nothing references any more."""
        released = self._released
        if not released:
            return
        freed: list[Stored] = []
        with self.lock:
            while released:
                oid = released.popleft()
                entry = self.entries.get(oid)
                if entry is None:
                    continue
                entry.refs -= 1
                self._forget_if_unused(oid, entry, freed)
        self._settle(freed)

    def add_borrower(self, oid: str, who: str) -> None:
        with self.lock:
            entry = self.entries.get(oid)
            if entry is not None:
                entry.borrowers.add(who)

    def remove_borrower(self, oid: str, who: str) -> None:
        freed: list[Stored] = []
        with self.lock:
            entry = self.entries.get(oid)
            if entry is not None:
                entry.borrowers.discard(who)
                self._forget_if_unused(oid, entry, freed)
        self._settle(freed)

    def drop_borrower(self, who: str) -> None:
        """The process ``who`` died: it borrows nothing of ours any more."""
        freed: list[Stored] = []
        with self.lock:
            for oid, entry in list(self.entries.items()):
                if who in entry.borrowers:
                    entry.borrowers.discard(who)
                    self._forget_if_unused(oid, entry, freed)
        self._settle(freed)

    def pin(self, oids: list[str], delta: int) -> None:
        if not oids:  # (most calls' arguments hold no refs)
            return
        freed: list[Stored] = []
        with self.lock:
            for oid in oids:
                entry = self.entries.get(oid)
                if entry is not None:
                    entry.pins += delta
                    self._forget_if_unused(oid, entry, freed)
        self._settle(freed)

    def add_stored(self, oid: str, blob: Stored) -> None:
        """A value we stored that no ObjectRef names (a task's large arguments): pin it to keep it."""
        with self.lock:
            entry = self.entries[oid] = Entry(None)
            entry.state, entry.blob = READY, blob

    def reset(self, oid: str) -> bool:
        """Make a lost object of ours pending again (its task runs again); False if it is gone."""
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None:
                return False
            entry.state, entry.blob, entry.error = PENDING, None, None
            return True

    def refresh(self, oid: str, blob: Blob) -> None:
        """A borrowed object's value moved (its owner re-made it): read it from ``blob`` now."""
        with self.lock:
            entry = self.entries.get(oid)
            if entry is not None and entry.state == READY:
                entry.blob = blob

    # ----------------------------------------------------------- resolving

    def resolve(self, oid: str, blob: Blob | None, error: BaseException | None = None, owned: bool = True) -> None:
        """The value (or error) of ``oid`` is known: record it and wake its waiters."""
        with self.lock:
            entry = self.entries.get(oid)
            if entry is not None and entry.state == PENDING:
                if error is None:
                    entry.state, entry.blob = READY, blob
                else:
                    entry.state, entry.error = FAILED, error
                waiters, entry.waiters = entry.waiters, []
            else:  # freed meanwhile (a stored value of ours then goes at once), or a duplicate
                # (a retried task's late reply, stored under the same key as the first)
                waiters, orphan = None, entry is None and owned and type(blob) is Stored
        if waiters is None:
            if orphan:
                self.on_free([blob])  # type: ignore[list-item]
            return
        if self.watchers:
            waiters = [*waiters, *self.watchers]
        for wake in waiters:
            try:
                wake()
            except Exception:  # one broken waiter must not stop the others, nor the loop
                log.exception("a waiter of object %s failed", oid)

    def when_done(self, oid: str, wake: Callable[[], object]) -> bool:
        """Call ``wake`` once ``oid`` is ready or failed; False if it already is (no call)."""
        with self.lock:
            entry = self.entries.get(oid)
            if entry is None or entry.state != PENDING:
                return False
            entry.waiters.append(wake)
            return True

    def forget_waiter(self, oid: str, wake: Callable[[], object]) -> None:
        with self.lock:
            entry = self.entries.get(oid)
            if entry is not None and wake in entry.waiters:
                entry.waiters.remove(wake)


def describe(table: ObjectTable, kind: str) -> list[dict[str, Any]]:
    """One row per object this process knows, with why it is kept (Ray's reference types)."""
    rows = []
    pid = os.getpid()
    with table.lock:
        items = list(table.entries.items())
    for oid, e in items:
        if oid[0] == HANDLE:  # an actor handle's token, not an object
            continue
        kinds = []
        if e.refs > 0:
            kinds.append("LOCAL_REFERENCE")
        if e.pins > 0:
            kinds.append("USED_BY_PENDING_TASK")
        if e.borrowers:
            kinds.append("BORROWED_BY_OTHERS")
        blob = e.blob
        stored = type(blob) is Stored
        size = blob.size if stored else (len(blob) if blob is not None else None)  # type: ignore[union-attr, arg-type]  # type() is not narrowing
        rows.append({
            "object_id": oid, "pid": pid, "type": kind, "owner": table.uid if e.owner is None else
            e.owner.actor_id.partition(":")[0], "owned": e.owner is None,
            "reference_type": kinds[0] if kinds else "PINNED_IN_MEMORY", "reference_types": kinds,
            "task_status": ("PENDING", "READY", "FAILED")[e.state], "object_size": size,
            "storage": "shared_memory" if stored else ("inline" if blob is not None else None),
            "store_key": blob.key if stored else None,  # type: ignore[union-attr]
        })
    return rows


NIL_ID = "ff" * 28  # Ray's nil id, in hex


class ObjectRef:
    """A reference to an object that exists now or will (a task's result).

    Get its value with ``tray.get(ref)``, or ``await ref`` in async code (trio or
    asyncio). It can be passed to tasks and actors, and stored in other objects.
    """

    __slots__ = ("_id", "_owner", "_table", "__weakref__")

    def __init__(self, oid: str, owner: ActorRef | None, table: ObjectTable | None) -> None:
        self._id = oid
        self._owner = owner
        self._table = table
        if table is not None:
            table.incref(oid, owner)

    def hex(self) -> str:
        """The object's id (Ray's name for it)."""
        return self._id

    def binary(self) -> bytes:
        """The object's id as bytes (Ray's)."""
        return self._id.encode()

    @classmethod
    def nil(cls) -> ObjectRef:
        """The ref to no object, as Ray's ``ObjectRef.nil()`` (what a generator's ``_next_sync``
        returns when nothing came in time)."""
        return cls(NIL_ID, None, None)

    def is_nil(self) -> bool:
        return self._id == NIL_ID

    def __repr__(self) -> str:
        return f"ObjectRef({self._id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __del__(self) -> None:
        table = self._table
        if table is not None:
            table.release_later(self._id)

    def __reduce__(self) -> tuple[Any, ...]:
        owner = self._owner
        if owner is None and self._table is not None:
            owner = self._table._owner_ref()
        collector = _collecting.refs
        if collector is not None:
            collector.append(self)
        return (_rebuild, (self._id, owner))

    def __await__(self) -> Generator[Any, None, Any]:
        from ._values import await_ref  # the reading side sits above this module

        return await_ref(self).__await__()

    def future(self) -> Any:
        """A ``concurrent.futures.Future`` of the value (Ray's ``ref.future()``), usable from any thread."""
        from ._values import concurrent_future

        return concurrent_future(self)

    def as_future(self) -> Any:
        """An ``asyncio`` future of the value, on the running loop (Ray's ``ref.as_future()``)."""
        from ._values import asyncio_future

        return asyncio_future(self)

    def _on_completed(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(value)`` once the object is ready (with the error instead, if it is
        one), on one of tray's threads: Ray's hook of the same name, which libraries use."""

        def done(fut: Any) -> None:
            exc = fut.exception()
            callback(exc if exc is not None else fut.result())

        self.future().add_done_callback(done)


class _Collecting(threading.local):
    refs: list[ObjectRef] | None = None


_collecting = _Collecting()


def collecting() -> bool:
    """Whether this thread serializes for tray now (its refs are pinned, lent or held)."""
    return _collecting.refs is not None


def _rebuild(oid: str, owner: ActorRef | None) -> ObjectRef:
    """A ref unpickled in this process joins its object table (none without a runtime)."""
    table = _process.current_table()
    if table is not None and owner is not None and table._owner_ref() == owner:
        owner = None  # it came home
    return ObjectRef(oid, owner, table)


def process_prefix() -> str:
    """Ids start with something unique to this process, so they never collide."""
    return f"{os.getpid():x}{os.urandom(3).hex()}."
