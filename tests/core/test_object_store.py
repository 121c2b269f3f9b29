"""The shared-memory object store as a Ray user meets it: large values live in /dev/shm,
are read in place by every process of the node, and go away when no ref is left."""

import os
import time

import numpy as np
import pytest

import tray
from tray.util import state

MiB = 1 << 20


@pytest.fixture(scope="module")
def ray():
    tray.init(num_cpus=2)
    yield tray
    tray.shutdown()


def _store_files():
    prefix = state.summarize_objects()["store"]["prefix"]
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))


def _used():
    return state.summarize_objects()["store"]["used"]


def _mapping_of(address):
    """(path, inode) of the file mapped at ``address`` in this process (from /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi and len(fields) >= 6:
                return fields[5], int(fields[4])
    return None


@tray.remote
def mapping_of_arg(arr):
    return _mapping_of(arr.ctypes.data), arr.flags.writeable, float(arr[123])


@tray.remote
def make_array(n):
    return np.arange(n, dtype=np.float64)


def test_large_put_lives_in_shared_memory_small_put_inline(ray):
    big, small = ray.put(np.ones(MiB)), ray.put(list(range(10)))
    rows = {r["object_id"]: r for r in state.list_objects(filters=[("type", "=", "DRIVER")])}
    assert rows[big.hex()]["storage"] == "shared_memory"
    assert rows[big.hex()]["location"] == "memory"
    assert rows[big.hex()]["object_size"] > 8 * MiB
    assert rows[small.hex()]["storage"] == "inline"
    assert any(big.hex() in name for name in _store_files())
    value = ray.get(big)
    assert value.sum() == MiB and not value.flags.writeable  # read-only, like Ray's
    with pytest.raises(ValueError):
        value[0] = 2
    assert ray.get(small) == list(range(10))


def test_two_processes_read_the_same_memory(ray):
    arr = np.random.default_rng(1).random(2 * MiB)
    ref = ray.put(arr)
    mine = ray.get(ref)
    assert np.shares_memory(mine, mine) and mine[123] == arr[123]
    here = _mapping_of(mine.ctypes.data)
    there, writeable, seen = ray.get(mapping_of_arg.remote(ref))
    assert here is not None and here[0].startswith("/dev/shm/")
    assert tuple(there) == here  # same file, same inode: the same physical pages
    assert not writeable and seen == arr[123]


def test_get_of_a_large_array_does_not_copy_it(ray):
    arr = np.ones(1 << 27)  # 1 GiB
    ref = ray.put(arr)
    start = time.perf_counter()
    out = ray.get(ref)
    get_s = time.perf_counter() - start
    start = time.perf_counter()
    arr.copy()
    copy_s = time.perf_counter() - start
    assert out.nbytes == arr.nbytes and out[-1] == 1.0
    assert get_s < copy_s / 10, f"get took {get_s:.4f} s, a copy {copy_s:.4f} s"
    del out, ref


def test_task_results_and_large_arguments_are_stored(ray):
    ref = make_array.remote(MiB)
    ray.wait([ref])
    rows = {r["object_id"]: r for r in state.list_objects()}
    assert rows[ref.hex()]["storage"] == "shared_memory"
    assert ray.get(ref)[-1] == MiB - 1
    arg = np.full(MiB, 7.0)  # passed by value: put into the store for the call, read in place
    (path, _inode), writeable, seen = ray.get(mapping_of_arg.remote(arg))
    assert path.startswith("/dev/shm/") and not writeable and seen == 7.0


def test_a_value_is_freed_when_its_last_ref_goes(ray):
    before = _used()
    refs = [ray.put(np.zeros(2 * MiB)) for _ in range(4)]
    assert _used() >= before + 4 * 16 * MiB
    kept = ray.get(refs[0])
    del refs
    assert _used() == before
    assert kept.sum() == 0  # a value already read stays readable after its object is freed


def test_results_nobody_kept_are_freed(ray):
    before = _used()
    ray.get([make_array.remote(MiB) for _ in range(3)])  # refs dropped as soon as get returns
    assert _used() == before


def test_borrowed_ref_keeps_the_value_alive(ray):
    @ray.remote
    class Keeper:
        def keep(self, refs):
            self.refs = refs

        def total(self):
            return float(ray.get(self.refs[0]).sum())

    keeper = Keeper.remote()
    ray.get(keeper.keep.remote([ray.put(np.ones(MiB))]))  # our ref is gone; the actor's is not
    time.sleep(0.3)  # let every process release what it dropped
    assert ray.get(keeper.total.remote()) == MiB
    ray.kill(keeper)


def _loop_put_drop(ray, count):
    chunk = np.ones(10 * MiB // 8)
    before, peak = _used(), 0
    for i in range(count):
        ref = ray.put(chunk)
        del ref
        if i % 100 == 99:
            peak = max(peak, _used() - before)
    return peak


def test_put_and_drop_loop_keeps_usage_bounded(ray):
    peak = _loop_put_drop(ray, 1000)  # 10 GiB written in all
    assert peak <= 20 * 10 * MiB, f"store usage grew to {peak / MiB:.0f} MiB above its start"


@pytest.mark.slow
def test_put_and_drop_ten_thousand_arrays_keeps_usage_bounded(ray):
    peak = _loop_put_drop(ray, 10_000)  # 100 GiB written in all
    assert peak <= 20 * 10 * MiB, f"store usage grew to {peak / MiB:.0f} MiB above its start"


def test_memory_summary_lists_objects(ray):
    ref = ray.put(np.ones(MiB))
    text = state.memory_summary()
    assert ref.hex() in text and "shared_memory" in text and "Shared memory:" in text


def test_tray_memory_cli_lists_objects_of_a_running_node(ray):
    import json
    import subprocess
    import sys

    from tray.core._runtime import current

    ref = ray.put(np.ones(MiB))
    tray.get(ref)  # the store has it sealed
    proc = subprocess.run([sys.executable, "-m", "tray", "memory"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr  # the newest node: ours, unless another test session runs
    address = current().system.address
    proc = subprocess.run([sys.executable, "-m", "tray", "memory", "--address", address], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert ref.hex() in proc.stdout and "shared_memory" in proc.stdout and "Shared memory:" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "tray", "memory", "--address", address, "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    listed = json.loads(proc.stdout)
    row = next(r for r in listed["objects"] if r["object_id"] == ref.hex())
    assert row["location"] == "memory" and row["object_size"] > 8 * MiB and row["type"] == "DRIVER"
    assert listed["store"]["used"] >= row["object_size"]
