"""The ObjectStore actor: accounting, spilling and restoring, pins, errors, freeing, sweeping."""

import errno
import os
import threading

import numpy as np
import pytest
import trio
from store_helpers import get, put, shm_keys, spawn_store, spill_keys

import tray
from tray.exceptions import ObjectLostError, ObjectStoreFullError
from tray.store import Segments, _manager, pack
from tray.store._manager import _BIG_UNLINK

MiB = 1 << 20
BUDGET = 2 * MiB + MiB // 2  # room for two of the 1 MiB values below, not three


def value(i, size=MiB):
    return np.random.default_rng(i).integers(0, 256, size, dtype=np.uint8)


def same(got, i, size=MiB):
    return got.shape == (size,) and np.array_equal(got, value(i, size))


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip_byte(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        byte = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([byte ^ 1]))


@pytest.fixture
def spill_dir(tmp_path):
    return str(tmp_path / "spill")


@pytest.fixture
def store_test(prefix, spill_dir):
    """Run ``await body(store, segs)`` with a fresh store of ``budget`` bytes; after the
    system stopped, check that the store swept its files."""

    def run(body, budget=BUDGET, own=True):
        async def main():
            async with tray.ActorSystem() as system:
                store = await spawn_store(system, prefix, budget, spill_dir, own)
                await body(store, Segments(prefix))

        trio.run(main)
        assert shm_keys(prefix) == set()
        assert spill_keys(spill_dir, prefix) == set()

    return run


def test_usage_accounting(store_test, prefix):
    async def body(store, segs):
        sizes = {k: await put(store, segs, k, value(i)) for i, k in enumerate("abc")}
        assert all(MiB < s < MiB + 1024 for s in sizes.values())
        st = await store.stats.ask()
        assert (st["used"], st["objects"], st["in_memory"]) == (sum(sizes.values()), 3, 3)
        assert (st["spills"], st["restores"], st["spilled_bytes"], st["prefix"]) == (0, 0, 0, prefix)
        rows = {r["object_id"]: (r["size"], r["owner"], r["location"], r["state"], r["pins"])
                for r in await store.list_objects.ask()}
        assert rows == {k: (sizes[k], "driver", "memory", "sealed", 0) for k in "abc"}
        assert shm_keys(prefix) == set("abc")

        await store.create.ask("d", 1000, "driver", "driver")  # reserved while being written
        st = await store.stats.ask()
        assert st["used"] == sum(sizes.values()) + 1000 and st["objects"] == 4
        store.abort.tell_nowait("d")
        store.free.tell_nowait(["b", "no-such-key"])
        st = await store.stats.ask()
        assert (st["used"], st["objects"]) == (sizes["a"] + sizes["c"], 2)
        assert shm_keys(prefix) == {"a", "c"}

    store_test(body, budget=10 * MiB)


def test_spilling_is_oldest_first_and_get_restores_transparently(store_test, prefix, spill_dir):
    async def body(store, segs):
        sizes = {k: await put(store, segs, k, value(i)) for i, k in enumerate("abc")}
        assert shm_keys(prefix) == {"b", "c"} and spill_keys(spill_dir, prefix) == {"a"}
        st = await store.stats.ask()
        assert (st["used"], st["spills"], st["spilled_bytes"]) == (sizes["b"] + sizes["c"], 1, sizes["a"])
        assert {r["object_id"]: r["location"] for r in await store.list_objects.ask()} == {
            "a": "spilled", "b": "memory", "c": "memory"}

        assert same(await get(store, segs, "a"), 0)  # restored; b, now the oldest, made room
        assert shm_keys(prefix) == {"a", "c"}
        assert same(await get(store, segs, "b"), 1)  # c goes
        assert same(await get(store, segs, "c"), 2)  # a goes: its spill copy is still there
        st = await store.stats.ask()
        assert (st["spills"], st["restores"]) == (3, 3)
        assert shm_keys(prefix) == {"b", "c"} and spill_keys(spill_dir, prefix) == {"a", "b", "c"}
        assert st["used"] == sizes["b"] + sizes["c"] <= BUDGET
        assert same(await get(store, segs, "a"), 0)  # a restore of a restored-then-spilled object

    store_test(body)


def test_concurrent_readers_of_a_spilled_object_share_one_restore(store_test):
    async def body(store, segs):
        for i, k in enumerate("abc"):
            await put(store, segs, k, value(i))
        got = []

        async def reader():
            got.append(await get(store, segs, "a"))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(reader)
        assert len(got) == 3 and all(same(g, 0) for g in got)
        assert (await store.stats.ask())["restores"] == 1

    store_test(body)


def test_pinned_objects_are_never_spilled(store_test, prefix, spill_dir):
    async def body(store, segs):
        await put(store, segs, "a", value(0))
        await put(store, segs, "b", value(1))
        store.pin.tell_nowait(["a"])
        store.pin.tell_nowait(["a"])  # two tasks use it
        await put(store, segs, "c", value(2))  # b goes, though a is older
        assert shm_keys(prefix) == {"a", "c"} and spill_keys(spill_dir, prefix) == {"b"}
        store.unpin.tell_nowait(["a"])
        await put(store, segs, "d", value(3))  # a is still pinned once: c goes
        assert shm_keys(prefix) == {"a", "d"}
        store.unpin.tell_nowait(["a"])
        store.unpin.tell_nowait(["a"])  # one too many: ignored
        await put(store, segs, "e", value(4))
        assert shm_keys(prefix) == {"d", "e"}
        assert [r["pins"] for r in await store.list_objects.ask() if r["object_id"] == "a"] == [0]

    store_test(body)


def test_full_only_when_nothing_can_be_spilled(store_test, prefix):
    async def body(store, segs):
        await put(store, segs, "a", value(0))
        store.pin.tell_nowait(["a"])
        await store.create.ask("b", MiB, "driver", "driver")  # being written: not spillable either
        with pytest.raises(ObjectStoreFullError) as info:
            await store.create.ask("c", MiB // 2, "driver", "driver")
        msg = str(info.value)
        assert "2.0 MiB of 2.5 MiB used" in msg and "0.5 MiB more is needed" in msg
        assert "1 pinned by running tasks (1.0 MiB)" in msg and "1 creating (1.0 MiB)" in msg
        assert "object_store_memory" in msg
        st = await store.stats.ask()
        assert st["objects"] == 2 and st["spills"] == 0 and shm_keys(prefix) == {"a"}

        store.unpin.tell_nowait(["a"])
        await store.create.ask("c", MiB // 2, "driver", "driver")  # now a can go
        assert shm_keys(prefix) == set()
        for k in "bc":
            store.abort.tell_nowait(k)
        assert (await store.stats.ask())["used"] == 0

    store_test(body)


def test_an_object_larger_than_the_budget_is_refused_at_once(store_test, prefix):
    async def body(store, segs):
        await put(store, segs, "a", value(0))
        with pytest.raises(ObjectStoreFullError) as info:
            await store.create.ask("big", 3 * MiB, "driver", "driver")
        msg = str(info.value)
        assert "3.0 MiB does not fit" in msg and "limit is 2.5 MiB" in msg and "1.0 MiB is used" in msg
        assert "object_store_memory" in msg
        st = await store.stats.ask()
        assert st["spills"] == 0 and st["objects"] == 1 and shm_keys(prefix) == {"a"}

    store_test(body)


def test_free_removes_memory_and_spill_files(store_test, prefix, spill_dir):
    async def body(store, segs):
        for i, k in enumerate("abc"):
            await put(store, segs, k, value(i))
        assert spill_keys(spill_dir, prefix) == {"a"}
        store.free.tell_nowait(["a", "b"])
        st = await store.stats.ask()
        assert (st["objects"], st["spilled_bytes"]) == (1, 0)
        assert shm_keys(prefix) == {"c"} and spill_keys(spill_dir, prefix) == set()
        for k in "ab":
            with pytest.raises(ObjectLostError, match="not in the object store"):
                await store.restore.ask(k)
        assert same(await get(store, segs, "c"), 2)  # still serving

    store_test(body)


def test_a_free_that_overtakes_the_seal_drops_the_object_at_seal(store_test, prefix):
    async def body(store, segs):
        packed = pack(value(0))
        await store.create.ask("a", packed.size, "driver", "driver")
        segs.write("a", packed)
        store.free.tell_nowait(["a"])
        st = await store.stats.ask()
        assert (st["objects"], st["used"]) == (1, packed.size)  # its writer is still at it
        assert shm_keys(prefix) == {"a"}
        store.seal.tell_nowait("a")
        st = await store.stats.ask()
        assert (st["objects"], st["used"]) == (0, 0) and shm_keys(prefix) == set()

    store_test(body)


def test_abort_gives_the_room_back(store_test, prefix):
    async def body(store, segs):
        await store.create.ask("a", 2 * MiB, "driver", "driver")
        write_file(segs.path("a"), b"x" * 100)  # half written
        store.abort.tell_nowait("a")
        assert (await store.stats.ask())["used"] == 0 and shm_keys(prefix) == set()
        await put(store, segs, "b", value(1))
        await put(store, segs, "c", value(2))
        assert (await store.stats.ask())["spills"] == 0

    store_test(body)


def test_process_died_drops_its_objects_and_its_half_written_files(store_test, prefix, spill_dir):
    async def body(store, segs):
        await put(store, segs, "a", value(0), owner="w1", writer="w1")
        await put(store, segs, "b", value(1), owner="w2", writer="w2")
        packed = pack(value(2))
        await store.create.ask("c", packed.size, "w2", "w1")  # w1 writes it for w2, and dies doing so
        segs.write("c", packed)
        await put(store, segs, "d", value(3), owner="w2", writer="w1")  # done: w2's now
        assert spill_keys(spill_dir, prefix) == {"a"}
        store.process_died.tell_nowait("w1")
        rows = {r["object_id"] for r in await store.list_objects.ask()}
        assert rows == {"b", "d"}
        assert shm_keys(prefix) == {"b", "d"} and spill_keys(spill_dir, prefix) == set()
        st = await store.stats.ask()
        assert st["spilled_bytes"] == 0 and st["used"] == 2 * packed.size
        store.seal.tell_nowait("c")  # a late seal of a dropped object: ignored
        assert (await store.stats.ask())["objects"] == 2

    store_test(body, budget=3 * MiB + MiB // 2)


def test_a_corrupted_spill_file_loses_that_object_only(store_test, prefix, spill_dir):
    async def body(store, segs):
        for i, k in enumerate("abc"):
            await put(store, segs, k, value(i))
        path = os.path.join(spill_dir, prefix + "a")
        flip_byte(path, 1000)
        with pytest.raises(ObjectLostError, match="cannot be restored.*checksum"):
            await get(store, segs, "a")
        assert not os.path.exists(path)
        assert "a" not in {r["object_id"] for r in await store.list_objects.ask()}
        with pytest.raises(ObjectLostError):  # and stays lost
            await store.restore.ask("a")
        for i, k in [(1, "b"), (2, "c")]:
            assert same(await get(store, segs, k), i)
        await put(store, segs, "d", value(3))
        assert same(await get(store, segs, "d"), 3)
        st = await store.stats.ask()
        assert st["used"] <= BUDGET and st["objects"] == 3

    store_test(body)


def test_a_full_spill_disk_is_a_clear_error_and_loses_nothing(store_test, prefix, spill_dir, monkeypatch):
    async def body(store, segs):
        await put(store, segs, "a", value(0))
        await put(store, segs, "b", value(1))
        real = os.pwrite

        def pwrite(fd, data, pos):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "pwrite", pwrite)
        with pytest.raises(ObjectStoreFullError) as info:
            await put(store, segs, "c", value(2))
        msg = str(info.value)
        assert "spilling failed" in msg and "disk is full" in msg and spill_dir in msg
        assert "object_spilling_directory" in msg and "object_store_memory" in msg
        assert shm_keys(prefix) == {"a", "b"} and spill_keys(spill_dir, prefix) == set()
        st = await store.stats.ask()
        assert (st["objects"], st["spills"], st["in_memory"]) == (2, 0, 2)

        monkeypatch.setattr(os, "pwrite", real)
        await put(store, segs, "c", value(2))  # room on disk again
        assert shm_keys(prefix) == {"b", "c"}  # a stayed the oldest
        for i, k in enumerate("abc"):
            assert same(await get(store, segs, k), i)

    store_test(body)


def test_no_room_in_shared_memory_for_a_restore_keeps_the_object_spilled(store_test, prefix, monkeypatch):
    async def body(store, segs):
        for i, k in enumerate("abc"):
            await put(store, segs, k, value(i))
        real = _manager.restore

        def restore(src, dst):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(_manager, "restore", restore)
        with pytest.raises(ObjectStoreFullError, match="/dev/shm has no room to restore object a"):
            await store.restore.ask("a")
        rows = {r["object_id"]: r["location"] for r in await store.list_objects.ask()}
        assert rows["a"] == "spilled"
        st = await store.stats.ask()
        assert st["used"] == sum(r["size"] for r in await store.list_objects.ask() if r["location"] == "memory")
        monkeypatch.setattr(_manager, "restore", real)
        assert same(await get(store, segs, "a"), 0)

    store_test(body)


class _HeldSpill:
    """Replaces the manager's spill with one that waits, in its thread, until ``release``."""

    def __init__(self, monkeypatch):
        self.started, self.go = threading.Event(), threading.Event()
        real = _manager.spill

        def spill(src, dst):
            self.started.set()
            assert self.go.wait(30)
            return real(src, dst)

        monkeypatch.setattr(_manager, "spill", spill)

    async def wait_started(self):
        assert await trio.to_thread.run_sync(self.started.wait, 30)


def test_a_free_during_a_spill_makes_room_instead_of_failing(store_test, prefix, spill_dir, monkeypatch):
    held = _HeldSpill(monkeypatch)

    async def body(store, segs):
        await put(store, segs, "a", value(0))
        await put(store, segs, "b", value(1))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(put, store, segs, "c", value(2))  # spills a: held
                await held.wait_started()
                store.free.tell_nowait(["a"])
                await store.stats.ask()  # the free is in
                held.go.set()
        finally:
            held.go.set()
        assert shm_keys(prefix) == {"b", "c"} and spill_keys(spill_dir, prefix) == set()
        st = await store.stats.ask()
        assert (st["objects"], st["spills"], st["spilled_bytes"]) == (2, 0, 0)

    store_test(body)


def test_an_object_pinned_during_its_spill_stays_in_memory(store_test, prefix, spill_dir, monkeypatch):
    held = _HeldSpill(monkeypatch)

    async def body(store, segs):
        await put(store, segs, "a", value(0))
        await put(store, segs, "b", value(1))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(put, store, segs, "c", value(2))  # spills a: held
                await held.wait_started()
                store.pin.tell_nowait(["a"])  # a task starts using a
                await store.stats.ask()
                held.go.set()
        finally:
            held.go.set()
        assert shm_keys(prefix) == {"a", "c"} and spill_keys(spill_dir, prefix) == {"a", "b"}
        assert same(await get(store, segs, "a"), 0)
        store.unpin.tell_nowait(["a"])
        await put(store, segs, "d", value(3))  # a goes now; its spill copy is reused
        assert shm_keys(prefix) == {"c", "d"}
        assert (await store.stats.ask())["spills"] == 2
        assert same(await get(store, segs, "a"), 0)

    store_test(body)


def test_a_big_object_recreated_under_its_key_never_meets_the_old_file(store_test, prefix):
    """A retried task writes its result under the same key: the old, large file (removed in
    a thread) must not collide with the new one nor take it away."""
    size = _BIG_UNLINK

    async def body(store, segs):
        for attempt in range(4):
            packed = pack(value(attempt, size))
            await store.create.ask("k", packed.size, "driver", "driver")
            segs.write("k", packed)  # the attempt dies before its seal
        store.seal.tell_nowait("k")
        for _ in range(20):  # give the old files' removal every chance to run
            await trio.lowlevel.checkpoint()
            await store.stats.ask()
            assert same(await get(store, segs, "k"), 3, size)
        assert (await store.stats.ask())["used"] == packed.size

    store_test(body, budget=4 * size)


@pytest.mark.parametrize("own", [True, False])
def test_stopping_the_store_sweeps_its_files(prefix, spill_dir, own):
    os.makedirs(spill_dir, exist_ok=True)
    other = os.path.join(spill_dir, "someone-elses-file")
    open(other, "w").close()

    async def main():
        async with tray.ActorSystem() as system:
            store = await spawn_store(system, prefix, BUDGET, spill_dir, own)
            segs = Segments(prefix)
            for i, k in enumerate("abcd"):
                await put(store, segs, k, value(i))
            await store.create.ask("e", 1000, "driver", "driver")  # half written
            write_file(segs.path("e"), b"x")
            assert shm_keys(prefix) == {"c", "d", "e"} and spill_keys(spill_dir, prefix) == {"a", "b"}

    trio.run(main)
    assert shm_keys(prefix) == set()
    if own:
        assert not os.path.exists(spill_dir)
    else:
        assert os.listdir(spill_dir) == ["someone-elses-file"]


def test_a_reader_may_spill_pinned_objects_when_nothing_else_can_go(store_test, prefix):
    """A running task needs its argument now; a pinned object's tasks have mapped it already."""
    async def body(store, segs):
        for i, k in enumerate("abc"):
            await put(store, segs, k, value(i))  # a spilled
        store.pin.tell_nowait(["b", "c"])
        with pytest.raises(ObjectStoreFullError):  # a writer never spills pinned objects
            await store.create.ask("d", MiB, "driver", "driver")
        assert same(await get(store, segs, "a"), 0)  # a reader does: the oldest pinned, b, goes
        assert shm_keys(prefix) == {"a", "c"}
        rows = {r["object_id"]: (r["location"], r["pins"]) for r in await store.list_objects.ask()}
        assert rows == {"a": ("memory", 0), "b": ("spilled", 1), "c": ("memory", 1)}
        assert same(await get(store, segs, "b"), 1)  # and back: a, unpinned, goes first
        assert shm_keys(prefix) == {"b", "c"}

    store_test(body)


def test_freed_files_are_recycled_only_when_nobody_maps_them(store_test, prefix):
    from store_helpers import pool_files

    async def body(store, segs):
        await put(store, segs, "a", value(1, 2 * MiB))
        inode = os.stat(segs.path("a")).st_ino
        store.free.tell_nowait(["a"])
        st = await store.stats.ask()
        assert st["used"] == 0 and st["pooled"] > 2 * MiB and len(pool_files(prefix)) == 1
        await put(store, segs, "b", value(2, 2 * MiB))  # a similar size: the pooled file is reused
        assert os.stat(segs.path("b")).st_ino == inode and pool_files(prefix) == set()
        assert same(await get(store, segs, "b"), 2, 2 * MiB)

        held = await get(store, segs, "b")  # a reader maps it: its file must not be rewritten
        store.free.tell_nowait(["b"])
        assert (await store.stats.ask())["pooled"] == 0 and pool_files(prefix) == set()
        await put(store, segs, "c", value(3, 2 * MiB))
        assert same(held, 2, 2 * MiB) and same(await get(store, segs, "c"), 3, 2 * MiB)
        del held

        stale = os.open(segs.path("c"), os.O_RDONLY)  # a reader that opened "c" just before its free
        try:
            store.free.tell_nowait(["c"])
            await put(store, segs, "d", value(4, 2 * MiB))  # "c"'s file now holds "d"
            assert segs.read("c") == (False, None)  # by name: gone
            assert os.pread(stale, 8, 0) == b"TRYSEG01" and os.fstat(stale).st_ino == os.stat(segs.path("d")).st_ino
        finally:
            os.close(stale)
        assert same(await get(store, segs, "d"), 4, 2 * MiB)

    store_test(body, budget=64 * MiB)


def test_pooled_files_give_way_to_new_objects(store_test, prefix):
    from store_helpers import pool_files

    async def body(store, segs):
        for i, key in enumerate("abcd"):
            await put(store, segs, key, value(i, 2 * MiB))
        store.free.tell_nowait(list("ab"))
        before = await store.stats.ask()
        assert before["pooled"] > 4 * MiB and before["used"] > 4 * MiB and len(pool_files(prefix)) == 2
        await put(store, segs, "e", value(9, 17 * MiB))  # fits once pooled files go: no spill
        st = await store.stats.ask()
        assert st["spills"] == 0 and st["pooled"] < before["pooled"]  # (its file goes in a thread)
        assert st["used"] + st["pooled"] <= 24 * MiB

    store_test(body, budget=24 * MiB)


def test_a_create_waits_for_objects_being_written_rather_than_failing(store_test):
    async def body(store, segs):
        size = (await put(store, segs, "a", value(1))) + 64
        store.pin.tell_nowait(["a"])  # a running task reads it: not spillable
        await store.create.ask("b", size, "driver", "w")  # being written: not spillable yet
        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def third():
                await store.create.ask("c", size, "driver", "w")  # needs "a" or "b" on disk
                done.set()

            nursery.start_soon(third)
            await trio.sleep(0.05)
            assert not done.is_set()
            segs.write("b", pack(value(2)))
            store.seal.tell_nowait("b")  # now "b" can go to disk
            await done.wait()
        st = await store.stats.ask()
        assert st["spills"] == 1 and st["used"] <= BUDGET

    store_test(body)
