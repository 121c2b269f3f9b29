"""The object store manager: one actor per node that keeps shared memory within its budget.

Writers ask it for room (``create``) before they write an object's file and tell it when
the file is complete (``seal``); owners tell it when an object is freed. When room is
short it spills sealed objects that no running task is using (least recently stored
first) to files on disk, and ``restore`` brings one back when a reader finds its file
gone. It raises ``ObjectStoreFullError`` only when nothing more can be spilled, saying
what holds the memory and how to raise the limit. Disk and ``/dev/shm`` work runs in
threads, so a large copy never stalls the node's loop.

Objects move between nodes by pull: a store that needs an object of another node
(``fetch``) makes a *secondary copy* of it, read in chunks from the source store
(``share``, then ``read_chunk``; see ``_transfer``), once per node however many readers
wait for it. The source records which stores hold copies and tells them to drop theirs
when the primary is freed. Copies are never spilled: when room is short they are
deleted first (before any primary is spilled), and fetched again if needed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import mmap
import os
import shutil
from typing import Any

import trio

from ..actors import Actor, ActorRef
from ..exceptions import ActorDiedError, ObjectLostError, ObjectStoreFullError, RayTaskError
from ._shm import HEADER, Segments
from ._spill import restore, spill
from ._transfer import CHUNK, INFLIGHT, MAX_CHUNK, Pull, Remotes, pull

log = logging.getLogger("tray.store")

STORE_NAME = "tray.store"
CREATING, SEALED, SPILLING, SPILLED = "creating", "sealed", "spilling", "spilled"
AWAITING_ROOM, RESTORING = "awaiting room", "restoring"  # a restore, before and after it has room
FETCHING = "fetching"  # a secondary copy being pulled from another node
_IN_MEMORY = (CREATING, SEALED, SPILLING, RESTORING, FETCHING)
_FORWARDED = ("free", "pin", "unpin")
_BIG_UNLINK = 16 << 20  # files this large are removed in a thread (freeing their pages takes a while)
_POOL_MIN = 1 << 20  # freed files this large are kept for reuse (see _shm): rewriting beats allocating
_POOL_FILES = 8


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


class _Obj:
    __slots__ = ("key", "size", "owner", "writer", "state", "pins", "on_disk", "freed", "source", "holders")

    def __init__(self, key: str, size: int, owner: str, writer: str, source: str | None = None) -> None:
        self.key, self.size, self.owner, self.writer = key, size, owner, writer
        self.state = FETCHING if source is not None else CREATING
        self.pins = 0  # running tasks that use it: never spilled meanwhile
        self.on_disk = False  # a spill file holds a copy (kept after a restore, so a re-spill is free)
        self.freed = False  # freed while being written: dropped when sealed
        self.source = source  # a secondary copy: the node that holds the primary
        self.holders: set[ActorRef] | None = None  # of a primary: the stores that copied it


class ObjectStore(Actor):
    """Budget, spilling and freeing for one node's shared-memory objects."""

    def __init__(self, prefix: str, budget: int, spill_dir: str, own_spill_dir: bool = False,
                 writer_wait_s: float = 10.0, chunk: int = CHUNK, inflight: int = INFLIGHT) -> None:
        self.segments = Segments(prefix)
        self.budget = budget
        self.spill_dir = spill_dir
        self.own_spill_dir = own_spill_dir  # we made it: remove it when we stop
        self.writer_wait_s = writer_wait_s  # how long a full store waits for objects being written
        self.objects: dict[str, _Obj] = {}
        self.sealed: dict[str, None] = {}  # sealed objects in memory, least recently stored first
        self.copies: dict[str, None] = {}  # sealed secondary copies, least recently fetched first
        self.used = 0  # bytes in shared memory, including objects being written or restored
        self.pool: dict[str, int] = {}  # files of freed objects kept for reuse, oldest first: size
        self.pooled = 0  # their bytes (they count against the budget: they are memory)
        self.on_disk = 0  # bytes in spill files
        self.spills = self.restores = 0
        self.chunk, self.inflight = chunk, inflight  # how copies are pulled
        self.pulls: dict[str, Pull] = {}  # copies being pulled, by key
        self.remotes = Remotes(self, STORE_NAME)
        self.fetches = self.evictions = self.chunks_served = 0
        self._room = trio.Lock()  # one caller at a time makes room (spills)
        self._changed = trio.Event()  # set when a spill or restore finishes
        self._seq = itertools.count()

    async def on_stop(self) -> None:
        self.segments.sweep()
        if self.own_spill_dir:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
        else:
            for obj in self.objects.values():
                if obj.on_disk:
                    self._remove_spill(obj.key)

    # ------------------------------------------------------------ writing

    async def create(self, key: str, size: int, owner: str, writer: str) -> None:
        """Reserve ``size`` bytes for a new object (spilling others if need be)."""
        old = self.objects.pop(key, None)
        if old is not None:  # left by an attempt of a retried task that died
            self._drop(old)
        await self._make_room(size)
        self.objects[key] = _Obj(key, size, owner, writer)
        self.used += size
        self._hand_over_pooled(key, size)

    def _hand_over_pooled(self, name: str, size: int) -> None:
        """Give the writer of the file ``name`` a pooled file of a similar size, under that name."""
        fits = [(psize, pooled) for pooled, psize in self.pool.items() if size <= psize <= 2 * size]
        if not fits:
            return
        psize, pooled = min(fits)
        del self.pool[pooled]
        self.pooled -= psize
        try:
            os.rename(self.segments.path(pooled), self.segments.path(name))
        except OSError:
            self.segments.unlink(pooled)

    def seal(self, key: str) -> None:
        """The object's file is complete: readers may map it, and it may be spilled."""
        obj = self.objects.get(key)
        if obj is None or obj.state != CREATING:
            return
        if obj.freed:
            del self.objects[key]
            self._drop(obj)
        else:
            obj.state = SEALED
            self.sealed[key] = None
        self._changed_now()  # a writer waiting for room may spill it now

    def abort(self, key: str) -> None:
        """The writer could not write the object: give its room back."""
        obj = self.objects.pop(key, None)
        if obj is not None:
            self._drop(obj)
            self._changed_now()

    # ------------------------------------------------------------ freeing

    def free(self, keys: list[str]) -> None:
        """The owner dropped these objects: their memory and spill files go."""
        for key in keys:
            obj = self.objects.get(key)
            if obj is None:
                continue
            if obj.state == CREATING:
                obj.freed = True  # its writer is still at it (the free overtook the seal)
                continue
            del self.objects[key]
            self._drop(obj)
        self._changed_now()

    def process_died(self, uid: str) -> None:
        """A process of the node died: its objects (it owned them) and half-written files go."""
        for key, obj in list(self.objects.items()):
            if obj.owner == uid or (obj.writer == uid and obj.state == CREATING):
                del self.objects[key]
                self._drop(obj)
        self._changed_now()

    def _drop(self, obj: _Obj, pool: bool = True) -> None:
        """Forget ``obj`` (already out of ``objects``): its files go, its copies elsewhere too."""
        self.sealed.pop(obj.key, None)
        self.copies.pop(obj.key, None)
        for holder in obj.holders or ():
            self.remotes.tell(holder, "drop_copies", [obj.key])
        if obj.state in _IN_MEMORY:
            self.used -= obj.size
            if obj.state == SEALED and pool and self._pool_file(obj):
                pass
            elif obj.size >= _BIG_UNLINK:
                # Renamed first, so that a new object under the same key (a retried task's)
                # never meets the old file, then removed in a thread.
                trash = f"{obj.key}.freed{next(self._seq)}"
                try:
                    os.rename(self.segments.path(obj.key), self.segments.path(trash))
                except FileNotFoundError:
                    pass
                else:
                    self.start_soon(trio.to_thread.run_sync, self.segments.unlink, trash)
            else:
                self.segments.unlink(obj.key)
        if obj.on_disk:
            obj.on_disk = False
            self.on_disk -= obj.size
            self._remove_spill(obj.key)
        obj.state = "freed"

    def _pool_file(self, obj: _Obj) -> bool:
        """Keep a freed object's file for reuse if it is large, the pool has room, and
        nobody maps it any more."""
        if obj.size < _POOL_MIN or self.pooled + obj.size > self.budget // 4:
            return False
        name = f"~pool{next(self._seq)}"
        if not self.segments.recycle(obj.key, name):
            return False
        self.pool[name] = obj.size
        self.pooled += obj.size
        while len(self.pool) > _POOL_FILES:
            self._evict_pooled()
        return True

    def _evict_pooled(self) -> None:
        name = next(iter(self.pool))
        self.pooled -= self.pool.pop(name)
        self.start_soon(trio.to_thread.run_sync, self.segments.unlink, name)

    def _spill_path(self, key: str) -> str:
        return os.path.join(self.spill_dir, self.segments.prefix + key)

    def _remove_spill(self, key: str) -> None:
        try:
            os.unlink(self._spill_path(key))
        except OSError:
            pass

    # ------------------------------------------------------------ pinning

    def pin(self, keys: list[str]) -> None:
        """A task that reads these objects starts: keep them in memory until ``unpin``."""
        for key in keys:
            obj = self.objects.get(key)
            if obj is not None:
                obj.pins += 1

    def unpin(self, keys: list[str]) -> None:
        for key in keys:
            obj = self.objects.get(key)
            if obj is not None and obj.pins > 0:
                obj.pins -= 1

    # ----------------------------------------------------- spill, restore

    async def _make_room(self, size: int, for_reader: bool = False) -> None:
        """Delete copies, then spill, until ``size`` more bytes fit. Pinned objects stay,
        except for a reader (a restore) when nothing else can go: a task that runs needs its
        data now, and the one a pinned object belongs to has mapped it already."""
        if size > self.budget:
            raise ObjectStoreFullError(
                f"an object of {_mib(size)} does not fit in the object store at all (its limit is "
                f"{_mib(self.budget)}, of which {_mib(self.used)} is used); raise it with "
                f"tray.init(object_store_memory=...)")
        while self.pool and self.used + self.pooled + size > self.budget:
            self._evict_pooled()
        if self.used + size <= self.budget:
            return
        deadline = None
        async with self._room:
            while self.used + size > self.budget:
                victim = self._victim(for_reader)
                if victim is None:
                    # Objects being written or restored are spillable soon: wait for them, a while.
                    if deadline is None:
                        deadline = trio.current_time() + self.writer_wait_s
                    if trio.current_time() < deadline and any(
                            o.state in (RESTORING, CREATING, FETCHING) for o in self.objects.values()):
                        with trio.move_on_at(deadline):
                            await self._wait_change()
                        continue
                    raise ObjectStoreFullError(self._full_message(size))
                if victim.source is not None:  # a copy: its primary is elsewhere, so it just goes
                    del self.objects[victim.key]
                    self._drop(victim, pool=False)
                    self.evictions += 1
                    self._changed_now()
                else:
                    await self._spill(victim)

    def _victim(self, pinned_too: bool) -> _Obj | None:
        """The oldest unpinned copy, else the oldest unpinned primary; if ``pinned_too``,
        then the same among pinned ones."""
        for pinned in (False, True) if pinned_too else (False,):
            for order in (self.copies, self.sealed):
                for key in order:
                    obj = self.objects[key]
                    if (obj.pins > 0) == pinned:
                        return obj
        return None

    async def _spill(self, obj: _Obj) -> None:
        del self.sealed[obj.key]
        if not obj.on_disk:
            obj.state = SPILLING
            pins = obj.pins
            try:
                await trio.to_thread.run_sync(spill, self.segments.path(obj.key), self._spill_path(obj.key))
            except Exception as exc:
                if self.objects.get(obj.key) is not obj:  # freed meanwhile (its file went): room was made
                    self._remove_spill(obj.key)
                    self._changed_now()
                    return
                obj.state = SEALED
                self.sealed = {obj.key: None, **self.sealed}  # still the oldest
                self._changed_now()
                if not isinstance(exc, OSError):  # SpillDiskFull is one
                    raise
                raise ObjectStoreFullError(
                    f"the object store is full and spilling failed: {exc}. Free space in "
                    f"{self.spill_dir}, spill elsewhere (tray.init(object_spilling_directory=...)), "
                    f"or raise tray.init(object_store_memory=...)") from None
            if self.objects.get(obj.key) is not obj:  # freed while it was being copied
                self._remove_spill(obj.key)
                self._changed_now()
                return
            obj.on_disk = True
            self.on_disk += obj.size
            self.spills += 1
            if obj.pins > pins:  # a task started using it meanwhile: it stays (a later spill is free)
                obj.state = SEALED
                self.sealed[obj.key] = None
                self._changed_now()
                return
        obj.state = SPILLED
        self.used -= obj.size
        self.segments.unlink(obj.key)
        self._changed_now()

    async def restore(self, key: str) -> None:
        """Bring a spilled object back into shared memory (a reader found its file gone)."""
        while True:
            obj = self.objects.get(key)
            if obj is None:
                raise ObjectLostError(f"object {key} is not in the object store (it was freed, or its owner died)")
            if obj.state in (SEALED, CREATING):
                return
            if obj.state == SPILLED:
                break
            await self._wait_change()  # being spilled or restored by someone else
        obj.state = AWAITING_ROOM
        try:
            await self._make_room(obj.size, for_reader=True)
        except BaseException:
            if obj.state == AWAITING_ROOM:
                obj.state = SPILLED
            self._changed_now()
            raise
        if self.objects.get(key) is not obj:  # freed meanwhile
            self._changed_now()
            raise ObjectLostError(f"object {key} was freed while it was being restored")
        obj.state = RESTORING
        self.used += obj.size
        try:
            await trio.to_thread.run_sync(restore, self._spill_path(key), self.segments.path(key))
        except Exception as exc:  # noqa: BLE001 - any restore failure is the reader's error
            self._changed_now()
            if self.objects.get(key) is not obj:
                raise ObjectLostError(f"object {key} was freed while it was being restored") from None
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                obj.state = SPILLED  # its spill file is intact: a later restore may succeed
                self.used -= obj.size
                raise ObjectStoreFullError(
                    f"{self.segments.directory} has no room to restore object {key} ({_mib(obj.size)}): the "
                    f"shared-memory file system is smaller than tray.init(object_store_memory=...); lower that, "
                    f"or enlarge {self.segments.directory}") from None
            del self.objects[key]
            self._drop(obj)
            log.error("object %s is lost: %s", key, exc)
            raise ObjectLostError(f"object {key} was spilled to disk and cannot be restored: {exc}") from None
        self.restores += 1
        if self.objects.get(key) is not obj:  # freed meanwhile
            self.segments.unlink(key)
        else:
            obj.state = SEALED
            self.sealed[key] = None
        self._changed_now()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _full_message(self, size: int) -> str:
        states: dict[str, list[int]] = {}
        for obj in self.objects.values():
            if obj.state in _IN_MEMORY:
                kind = "pinned by running tasks" if obj.pins and obj.state == SEALED else obj.state
                states.setdefault(kind, []).append(obj.size)
        held = ", ".join(f"{len(sizes)} {kind} ({_mib(sum(sizes))})" for kind, sizes in sorted(states.items()))
        return (f"the object store is full: {_mib(self.used)} of {_mib(self.budget)} used, and {_mib(size)} more "
                f"is needed; nothing can be spilled (in memory: {held or 'nothing'}). Raise the limit with "
                f"tray.init(object_store_memory=...), or keep fewer large objects referenced at once.")

    # ------------------------------------------------------ between nodes

    async def fetch(self, key: str, size: int, node: str) -> None:
        """Make sure ``key`` (``size`` bytes of layout, its primary at the store of ``node``)
        is in this node's memory: pull a secondary copy unless one is here or on its way."""
        while True:
            ongoing = self.pulls.get(key)
            if ongoing is not None:
                await ongoing.wait()
                continue
            obj = self.objects.get(key)
            if obj is None:
                break
            if obj.source is None:  # a primary of this node after all
                return await self.restore(key)
            return  # a sealed copy
        if type(size) is not int or size < 0:
            raise ValueError(f"object {key}: bad size {size!r}")
        self.pulls[key] = shared = Pull()
        try:
            for retry in (True, False):
                try:
                    await self._pull(key, HEADER + size, node, shared)
                    break
                except ActorDiedError as exc:  # the connection broke: once more, on a new one
                    self.remotes.forget(node)
                    if not retry:
                        raise ObjectLostError(f"object {key} could not be fetched from the object store at "
                                              f"{node}: {exc}") from None
                    log.info("fetching object %s from %s: %s; retrying", key, node, exc)
        except BaseException as exc:
            shared.error = exc if isinstance(exc, Exception) else ObjectLostError(
                f"object {key}: the fetch from {node} was interrupted")
            raise
        finally:
            del self.pulls[key]
            shared.done.set()

    async def _pull(self, key: str, size: int, node: str, shared: Pull) -> None:
        """One attempt at pulling ``key`` (its file: ``size`` bytes) from ``node``; raises
        ``ActorDiedError`` if the connection to it breaks."""
        lost = f"object {key} could not be fetched from the object store at {node}"
        try:
            source = await self.remotes.at(node)
            # The source records us as a holder before the first byte moves, so that a free
            # from now on reaches us (and fails this pull) even if it overtakes the last chunk.
            total = await source.share.ask(key, self.ref)
        except ObjectLostError as exc:
            if not isinstance(exc, RayTaskError):  # from Remotes.at
                raise ObjectLostError(f"{lost}: {exc}") from None
            raise ObjectLostError(f"{lost}: it is not there (it was freed, or its owner died)") from None
        if total != size:
            raise ValueError(f"object {key} at {node} is {total - HEADER:,} bytes, not {size - HEADER:,}: "
                             f"refusing to fetch it")
        await self._make_room(size)
        obj = self.objects[key] = _Obj(key, size, "", "", node)
        self.used += size
        part = f"{key}.part"
        self._hand_over_pooled(part, size)

        try:
            fd = self.segments.create(part, size)
            mapping = mmap.mmap(fd, size) if size else None
            view = memoryview(mapping) if mapping is not None else memoryview(b"")

            async def read(offset: int, length: int) -> memoryview | None:
                target = view[offset: offset + length]
                try:
                    data = await source.read_chunk.ask_into([target], key, offset, length)
                except ObjectLostError:
                    raise ObjectLostError(f"{lost}: it was freed there meanwhile") from None
                landed = isinstance(data, memoryview) and data.obj is mapping and data.nbytes == length
                return None if landed else data

            try:
                await pull(read, fd, size, self.chunk, self.inflight)
            except OSError as exc:
                raise self.segments.no_room(exc, size) from None
            finally:
                view.release()
                if mapping is not None:
                    with contextlib.suppress(BufferError):  # a reply's view may linger a moment: it unmaps then
                        mapping.close()
                os.close(fd)
            if not self.segments.holds(part, key, size):
                raise ObjectLostError(f"{lost}: the bytes received are not that object")
            if shared.dropped or self.objects.get(key) is not obj:
                raise ObjectLostError(f"{lost}: it was freed while being fetched")
            os.rename(self.segments.path(part), self.segments.path(key))
        except BaseException:
            self.segments.unlink(part)
            if self.objects.get(key) is obj:
                del self.objects[key]
                self._drop(obj)
            self._changed_now()
            raise
        obj.state = SEALED
        self.copies[key] = None
        self.fetches += 1
        self._changed_now()

    async def share(self, key: str, holder: ActorRef) -> int:
        """The store ``holder`` (of another node) starts copying ``key``: it will be told
        to drop its copy when the object goes. The size of the object's file."""
        while True:
            obj = self.objects.get(key)
            if obj is None or obj.source is not None or obj.freed:
                raise ObjectLostError(f"object {key} is not in the object store at {self.system.address}")
            if obj.state in (SEALED, SPILLING, SPILLED):
                obj.holders = obj.holders or set()
                obj.holders.add(holder)
                return obj.size
            await self._wait_change()  # being written or restored

    async def read_chunk(self, key: str, offset: int, length: int) -> memoryview:
        """Bytes ``offset`` to ``offset + length`` of the file of ``key`` (restored first if it
        was spilled), as a view of its mapping: sent out of band, without a copy."""
        if not (type(offset) is int and type(length) is int and offset >= 0 and 0 < length <= MAX_CHUNK):
            raise ValueError(f"bad chunk request: {length!r} bytes at {offset!r}")
        while True:
            obj = self.objects.get(key)
            if obj is None or obj.source is not None:
                raise ObjectLostError(f"object {key} is not in the object store at {self.system.address}")
            if obj.state in (SEALED, SPILLING):
                break
            if obj.state == SPILLED:
                await self.restore(key)
            else:
                await self._wait_change()
        view = self.segments.map_range(key, offset, length)
        if view is None:  # pragma: no cover - the file of a sealed object is there
            raise ObjectLostError(f"object {key} has no file in the object store at {self.system.address}")
        if key in self.sealed:  # being read: the last to be spilled
            del self.sealed[key]
            self.sealed[key] = None
        self.chunks_served += 1
        return view

    def drop_copies(self, keys: list[str]) -> None:
        """The primaries of these copies were freed on their node: the copies go too."""
        for key in keys:
            shared = self.pulls.get(key)
            if shared is not None:
                shared.dropped = True
            obj = self.objects.get(key)
            if obj is not None and obj.source is not None and obj.state == SEALED:
                del self.objects[key]
                self._drop(obj)
        self._changed_now()

    def forward(self, node: str, method: str, keys: list[str]) -> None:
        """Send ``free``, ``pin`` or ``unpin`` of ``keys`` on to the store of ``node`` (the
        node that holds them), after what was forwarded there before."""
        if method not in _FORWARDED:
            raise ValueError(f"cannot forward {method!r}: only {', '.join(_FORWARDED)}")
        if node == self.system.address:
            getattr(self, method)(keys)
        else:
            self.remotes.tell(node, method, keys)

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        self.remotes.down(ref)

    # ------------------------------------------------------------- views

    def stats(self) -> dict[str, Any]:
        """Usage in numbers: budget, bytes in memory and on disk, counts (secondary copies
        among them: ``copies``, ``copy_bytes``; pulled, evicted, chunks served to others)."""
        in_memory = sum(1 for o in self.objects.values() if o.state in _IN_MEMORY)
        copies = [o.size for o in self.objects.values() if o.source is not None]
        return {"budget": self.budget, "used": self.used, "pooled": self.pooled, "spilled_bytes": self.on_disk,
                "objects": len(self.objects), "in_memory": in_memory, "spills": self.spills,
                "restores": self.restores, "spill_dir": self.spill_dir, "prefix": self.segments.prefix,
                "copies": len(copies), "copy_bytes": sum(copies), "fetches": self.fetches,
                "evictions": self.evictions, "chunks_served": self.chunks_served}

    def list_objects(self) -> list[dict[str, Any]]:
        """One row per object: id, size, owner, location (memory/spilled), pins; ``copy``
        (a secondary copy of an object of node ``source``), and for a primary the number
        of other nodes' stores that copied it (``holders``)."""
        return [{"object_id": o.key, "size": o.size, "owner": o.owner,
                 "location": "spilled" if o.state == SPILLED else "memory", "state": o.state, "pins": o.pins,
                 "copy": o.source is not None, "source": o.source, "holders": len(o.holders or ())}
                for o in self.objects.values()]
