"""A Hypothesis state machine: a real ObjectStore and its /dev/shm and spill files against a
dict model that predicts every spill (oldest unpinned first), restore, loss and refusal.

The store runs in an ActorSystem in a helper thread; each rule talks to it as a worker's
StoreClient does (ask for room, write the file, tell the seal; read in place, ask for a
restore when the file is gone) and ends with an ask, so the store has handled everything
before the invariants look.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from store_helpers import StoreThread, get, shm_keys, spill_keys

from tray.exceptions import ObjectLostError, ObjectStoreFullError
from tray.store import Segments, pack

BUDGET = 12_000
OWNERS = ("w1", "w2")


@dataclass
class Obj:
    seed: int
    n: int  # bytes of its array
    size: int  # bytes of its layout: what the store counts
    owner: str
    pins: int = 0
    in_memory: bool = True
    on_disk: bool = False  # a spill file holds a copy (kept after a restore)
    corrupt: bool = False  # that copy was damaged


def array(seed, n):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.prefix = f"tray-model-{os.urandom(4).hex()}-"
        self.tmp = tempfile.mkdtemp(prefix="store-model-")
        self.spill_dir = os.path.join(self.tmp, "spill")  # the store makes it, and removes it
        self.runner = StoreThread(self.prefix, BUDGET, self.spill_dir)
        self.store = self.runner.store
        self.segs = Segments(self.prefix)
        self.objs: dict[str, Obj] = {}
        self.lru: dict[str, None] = {}  # sealed objects in memory, least recently stored first
        self.freed: list[str] = []
        self.seq = 0

    def teardown(self):
        try:
            self.runner.close()
            assert shm_keys(self.prefix) == set(), "the store left /dev/shm files at stop"
            assert not os.path.exists(self.spill_dir), "the store left its spill dir at stop"
        finally:
            self.segs.sweep()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ the model

    @property
    def used(self):
        return sum(o.size for o in self.objs.values() if o.in_memory)

    def make_room(self, size, for_reader=False):
        """What the store does before a create or restore: spill the oldest unpinned until
        ``size`` fits (for a reader, the oldest pinned ones when none is left); False if it
        cannot (the store raises ObjectStoreFullError)."""
        if size > BUDGET:
            return False
        while self.used + size > BUDGET:
            victim = next((k for k in self.lru if self.objs[k].pins == 0), None)
            if victim is None and for_reader:
                victim = next(iter(self.lru), None)
            if victim is None:
                return False
            event("spill" if not self.objs[victim].on_disk else "spill of a kept copy")
            del self.lru[victim]
            self.objs[victim].in_memory = False
            self.objs[victim].on_disk = True
        return True

    def drop(self, key):
        del self.objs[key]
        self.lru.pop(key, None)
        self.freed.append(key)

    def call(self, afn, *args):
        return self.runner.call(afn, *args)

    def tell(self, method, *args):
        """Tell the store, then ask it something: it has handled the tell when this returns."""
        async def go():
            getattr(self.store, method).tell_nowait(*args)
            await self.store.stats.ask()
        self.call(go)

    def new_key(self):
        self.seq += 1
        return f"o{self.seq}"

    # ------------------------------------------------------------ rules

    @initialize(sizes=st.lists(st.integers(2000, 5000), min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1))
    def fill(self, sizes, seed):
        """Start near the budget, so that spilling starts early."""
        for i, n in enumerate(sizes):
            self.put(n, seed + i, OWNERS[i % 2], False)

    @rule(
        n=st.integers(2000, 5000) | st.integers(0, 5000) | st.sampled_from([0, 1, BUDGET - 200, BUDGET]),
        seed=st.integers(0, 2**32 - 1),
        owner=st.sampled_from(OWNERS),
        free_first=st.booleans(),
    )
    def put(self, n, seed, owner, free_first):
        """Store a value; with ``free_first`` its owner frees it before the writer's seal arrives."""
        key, packed = self.new_key(), pack(array(seed, n))
        fits = self.make_room(packed.size)
        store, segs = self.store, self.segs

        async def go():
            await store.create.ask(key, packed.size, owner, "writer")
            segs.write(key, packed)
            if free_first:
                store.free.tell_nowait([key])
            store.seal.tell_nowait(key)
            await store.stats.ask()

        if not fits:
            event("put: refused, full")
            with pytest.raises(ObjectStoreFullError, match="object_store_memory"):
                self.call(go)
            return
        self.call(go)
        if free_first:
            self.freed.append(key)
        else:
            self.objs[key] = Obj(seed, n, packed.size, owner)
            self.lru[key] = None

    @precondition(lambda self: self.objs)
    @rule(data=st.data())
    def read(self, data):
        self._read(data.draw(st.sampled_from(sorted(self.objs))))

    @precondition(lambda self: any(not o.in_memory for o in self.objs.values()))
    @rule(data=st.data())
    def read_spilled(self, data):
        self._read(data.draw(st.sampled_from(sorted(k for k, o in self.objs.items() if not o.in_memory))))

    def _read(self, key):
        """Read as StoreClient.decode does; the model says whether it restores, is lost or refused."""
        obj = self.objs[key]
        found, _ = self.segs.read(key)
        assert found == obj.in_memory
        if not obj.in_memory:
            if not self.make_room(obj.size, for_reader=True):
                event("read: restore refused, full")
                with pytest.raises(ObjectStoreFullError):
                    self.call(self.store.restore.ask, key)
                return
            if obj.corrupt:
                event("read: lost")
                with pytest.raises(ObjectLostError, match="cannot be restored"):
                    self.call(self.store.restore.ask, key)
                self.drop(key)
                return
            event("read: restored")
            obj.in_memory = True
            self.lru[key] = None
        got = self.call(get, self.store, self.segs, key)
        assert got.shape == (obj.n,) and np.array_equal(got, array(obj.seed, obj.n))
        assert not got.flags.writeable

    @precondition(lambda self: self.freed)
    @rule(data=st.data())
    def read_freed(self, data):
        key = data.draw(st.sampled_from(self.freed))
        assert self.segs.read(key) == (False, None)
        with pytest.raises(ObjectLostError, match="not in the object store"):
            self.call(self.store.restore.ask, key)

    @precondition(lambda self: self.objs)
    @rule(data=st.data())
    def free(self, data):
        key = data.draw(st.sampled_from(sorted(self.objs)))
        self.tell("free", [key])
        self.drop(key)

    @rule(owner=st.sampled_from(OWNERS))
    def process_died(self, owner):
        self.tell("process_died", owner)
        for key in [k for k, o in self.objs.items() if o.owner == owner]:
            self.drop(key)

    @precondition(lambda self: self.objs)
    @rule(data=st.data())
    def pin(self, data):
        key = data.draw(st.sampled_from(sorted(self.objs)))
        self.tell("pin", [key])
        self.objs[key].pins += 1

    @precondition(lambda self: any(o.pins for o in self.objs.values()))
    @rule(data=st.data())
    def unpin(self, data):
        key = data.draw(st.sampled_from(sorted(k for k, o in self.objs.items() if o.pins)))
        self.tell("unpin", [key])
        self.objs[key].pins -= 1

    @precondition(lambda self: any(o.on_disk and not o.corrupt for o in self.objs.values()))
    @rule(data=st.data(), how=st.sampled_from(["truncate", "flip", "append"]))
    def corrupt_spill_file(self, data, how):
        """Damage a spill file (of a spilled object, or the kept copy of a restored one)."""
        key = data.draw(st.sampled_from(sorted(k for k, o in self.objs.items() if o.on_disk and not o.corrupt)))
        path = os.path.join(self.spill_dir, self.prefix + key)
        length = os.path.getsize(path)
        with open(path, "r+b") as f:
            if how == "truncate":
                f.truncate(data.draw(st.integers(0, length - 1)))
            elif how == "append":
                f.seek(0, os.SEEK_END)
                f.write(b"\0")
            else:
                pos = data.draw(st.integers(0, length - 1))
                f.seek(pos)
                byte = f.read(1)[0]
                f.seek(pos)
                f.write(bytes([byte ^ data.draw(st.integers(1, 255))]))
        self.objs[key].corrupt = True

    # ------------------------------------------------------------ invariants

    @invariant()
    def accounting_matches(self):
        stats = self.call(self.store.stats.ask)
        assert stats["used"] <= BUDGET
        assert stats["used"] == self.used
        assert stats["objects"] == len(self.objs)
        assert stats["in_memory"] == sum(o.in_memory for o in self.objs.values())
        assert stats["spilled_bytes"] == sum(o.size for o in self.objs.values() if o.on_disk)
        rows = {r["object_id"]: (r["location"], r["pins"]) for r in self.call(self.store.list_objects.ask)}
        assert rows == {k: ("memory" if o.in_memory else "spilled", o.pins) for k, o in self.objs.items()}

    @invariant()
    def files_match(self):
        """Live objects have exactly the files they should; freed and lost ones have none."""
        assert shm_keys(self.prefix) == {k for k, o in self.objs.items() if o.in_memory}
        assert spill_keys(self.spill_dir, self.prefix) == {k for k, o in self.objs.items() if o.on_disk}

    @invariant()
    def objects_in_memory_read_back_equal(self):
        for key, obj in self.objs.items():
            if obj.in_memory:
                found, got = self.segs.read(key)
                assert found and np.array_equal(got, array(obj.seed, obj.n))


StoreMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestStoreModel = StoreMachine.TestCase
