"""A small object store (64 MiB) under pressure: spilling, restoring, and the errors when
memory, or the disk, runs out."""

import os
import time

import numpy as np
import pytest

import tray
from tray.exceptions import ObjectLostError, ObjectStoreFullError
from tray.util import state

MiB = 1 << 20
BUDGET = 64 * MiB


@pytest.fixture(scope="module")
def spill_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("spill")


@pytest.fixture(scope="module")
def ray(spill_dir):
    tray.init(num_cpus=2, object_store_memory=BUDGET, object_spilling_directory=str(spill_dir))
    yield tray
    tray.shutdown()
    assert not [n for n in os.listdir(spill_dir) if n.startswith("tray")], "spill files outlived the session"


def _chunk(i, mib=12):
    return np.full(mib * MiB // 8, float(i))


def _locations(refs):
    rows = {r["object_id"]: r["location"] for r in state.list_objects(limit=None) if r["owned"]}
    return [rows[r.hex()] for r in refs]


def _spill_files(spill_dir):
    return [n for n in os.listdir(spill_dir) if n.startswith("tray")]


def test_over_budget_objects_spill_and_come_back(ray, spill_dir):
    refs = [ray.put(_chunk(i)) for i in range(10)]  # 120 MiB into a 64 MiB store
    stats = state.summarize_objects()["store"]
    assert stats["used"] <= BUDGET
    where = _locations(refs)
    assert where[0] == "spilled" and where[-1] == "memory"  # the oldest went first
    assert len(_spill_files(spill_dir)) == where.count("spilled")
    for i, ref in enumerate(refs):  # every one reads back, restored on demand
        value = ray.get(ref)
        assert value[0] == i and value[-1] == i
        del value
    assert state.summarize_objects()["store"]["restores"] >= 1
    del refs, ref
    assert state.summarize_objects()["store"]["used"] == 0  # (also waits for the frees to land)
    assert _spill_files(spill_dir) == []  # freed objects take their spill files with them


@tray.remote
def total(x):
    return float(x.sum())


def test_tasks_read_spilled_arguments(ray):
    refs = [ray.put(_chunk(i)) for i in range(8)]
    assert "spilled" in _locations(refs)
    assert ray.get([total.remote(r) for r in refs]) == [float(i * 12 * MiB // 8) for i in range(8)]


@tray.remote
def hold(x, seconds):
    time.sleep(seconds)
    return float(x[0])


def test_store_full_when_nothing_can_spill(ray):
    arg = ray.put(_chunk(1, mib=40))
    running = hold.remote(arg, 3.0)  # its argument is pinned while it runs
    deadline = time.monotonic() + 10
    while not any(r["pinned"] for r in state.list_objects(limit=None)):  # dispatched to its worker
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ObjectStoreFullError) as info:
        ray.put(_chunk(2, mib=30))
    message = str(info.value)
    assert "object_store_memory" in message and "64.0 MiB" in message and "pinned" in message
    assert ray.get(running) == 1.0
    ref = ray.put(_chunk(2, mib=30))  # once the task is done, its argument may spill
    assert ray.get(ref)[0] == 2.0


def test_an_object_larger_than_the_store_is_refused(ray):
    with pytest.raises(ObjectStoreFullError, match="does not fit"):
        ray.put(np.zeros(80 * MiB // 8))
    assert ray.get(ray.put(1)) == 1  # and nothing else is affected


def test_corrupted_spill_file_loses_that_object_only(ray, spill_dir):
    refs = [ray.put(_chunk(i)) for i in range(8)]
    where = _locations(refs)
    victim = refs[where.index("spilled")]
    path = next(os.path.join(spill_dir, n) for n in _spill_files(spill_dir) if n.endswith(victim.hex()))
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"garbage!")
    with pytest.raises(ObjectLostError, match="cannot be restored"):
        ray.get(victim)
    for ref in refs:
        if ref is not victim:
            assert ray.get(ref)[0] == refs.index(ref)


def test_truncated_spill_file_loses_that_object_only(ray, spill_dir):
    refs = [ray.put(_chunk(i)) for i in range(8)]
    victim = refs[_locations(refs).index("spilled")]
    path = next(os.path.join(spill_dir, n) for n in _spill_files(spill_dir) if n.endswith(victim.hex()))
    os.truncate(path, 1000)
    with pytest.raises(ObjectLostError, match="truncated"):
        ray.get(victim)
    assert ray.get(refs[-1])[0] == 7
