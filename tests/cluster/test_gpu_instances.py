"""Which GPUs a lease holds, one by one (``tray.cluster._resources.Instances``, pure), and
what a task or actor then sees, as Ray documents it: ``get_gpu_ids()``,
``get_accelerator_ids()["GPU"]`` and ``CUDA_VISIBLE_DEVICES`` name its own GPUs (fractions
of a GPU share one), placement group bundles keep theirs, and num_gpus above 1 is whole."""

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tray
from tray.cluster._resources import UNIT, Instances
from tray.util.placement_group import placement_group, remove_placement_group
from tray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

# ------------------------------------------------------------------------- pure

amounts = st.sampled_from([UNIT // 4, UNIT // 2, UNIT, 2 * UNIT, 3 * UNIT])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(st.booleans(), amounts), max_size=40))
def test_instances_never_give_a_gpu_twice(count, steps):
    gpus = Instances({i: UNIT for i in range(count)})
    held: list[tuple[tuple[int, ...], int]] = []
    for take, units in steps:
        if take or not held:
            fits = gpus.pick(units) is not None
            ids = gpus.take(units)
            assert (ids is not None) == fits
            if ids is None:  # it does not fit: no GPU (or not enough whole ones) is free enough
                if units < UNIT:
                    assert all(free < units for free in gpus.free.values())
                else:
                    assert sum(free == UNIT for free in gpus.free.values()) < units // UNIT
                continue
            assert len(ids) == (1 if units < UNIT else units // UNIT) and len(set(ids)) == len(ids)
            held.append((ids, units))
        else:
            ids, units = held.pop(0)
            gpus.give(ids, units)
        used = {i: 0 for i in range(count)}
        for ids, units in held:
            for i in ids:
                used[i] += min(units, UNIT)
        assert all(used[i] + gpus.free[i] == UNIT for i in range(count))  # nothing lost, nothing twice


def test_fractions_share_a_gpu_and_whole_ones_take_free_gpus():
    gpus = Instances({0: UNIT, 1: UNIT})
    assert gpus.take(UNIT // 2) == (0,) and gpus.take(UNIT // 2) == (0,)  # packed, as Ray does
    assert gpus.take(UNIT) == (1,)
    assert gpus.take(UNIT // 4) is None and gpus.pick(0) == []
    gpus.give((0,), UNIT // 2)
    assert gpus.take(UNIT) is None  # half of GPU 0 is still held
    assert gpus.take(UNIT // 2) == (0,)


# ------------------------------------------------------------------- as used


@pytest.fixture(scope="module")
def gpus():
    """A node with 2 (pretend) GPUs: tray schedules them as Ray does, whatever the hardware."""
    tray.init(num_cpus=4, num_gpus=2)
    yield tray
    tray.shutdown()


@tray.remote(num_gpus=1)
class GPUActor:
    def ping(self):
        return (tray.get_gpu_ids(), tray.get_runtime_context().get_accelerator_ids()["GPU"],
                os.environ.get("CUDA_VISIBLE_DEVICES"))


@tray.remote(num_gpus=1)
def gpu_task(seconds):
    time.sleep(seconds)
    return tray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")


@tray.remote
def cpu_task():
    return tray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


def test_actors_and_tasks_each_see_their_own_gpu(gpus):
    a, b = GPUActor.remote(), GPUActor.remote()
    seen = tray.get([a.ping.remote(), b.ping.remote()])
    assert sorted(s[0][0] for s in seen) == [0, 1]  # one GPU each, not both GPU 0
    for ids, accel, visible in seen:
        assert accel == [str(ids[0])] and visible == str(ids[0])
    tray.kill(a)
    tray.kill(b)
    time.sleep(0.5)
    together = tray.get([gpu_task.remote(1.0), gpu_task.remote(1.0)])  # at once: one GPU each
    assert sorted(ids[0] for ids, _ in together) == [0, 1]
    assert all(visible == str(ids[0]) for ids, visible in together)
    # a task without GPUs, on a worker that ran one with a GPU, sees none (CUDA_VISIBLE_DEVICES as it started)
    for ids, visible in tray.get([cpu_task.remote() for _ in range(8)]):
        assert ids == [] and visible == os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


def test_whole_gpus_and_fractions(gpus):
    @tray.remote(num_gpus=2)
    def both():
        return tray.get_gpu_ids(), os.environ["CUDA_VISIBLE_DEVICES"]

    assert tray.get(both.remote()) == ([0, 1], "0,1")

    @tray.remote(num_gpus=0.5)
    def half(seconds):
        time.sleep(seconds)
        return tray.get_gpu_ids()

    halves = tray.get([half.remote(0.5) for _ in range(4)])
    assert all(len(ids) == 1 and ids[0] in (0, 1) for ids in halves)
    with pytest.raises(ValueError, match="whole numbers"):
        gpu_task.options(num_gpus=1.5)


def test_placement_group_bundles_keep_their_gpus(gpus):
    pg = placement_group([{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}])
    tray.get(pg.ready(), timeout=60)
    actors = [GPUActor.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i))
              .remote() for i in range(2)]
    seen = tray.get([a.ping.remote() for a in actors], timeout=60)
    assert sorted(s[0][0] for s in seen) == [0, 1]
    for a in actors:
        tray.kill(a)
    remove_placement_group(pg)
    assert tray.get(gpu_task.remote(0), timeout=60)[0] in ([0], [1])  # the group's GPUs are the node's again
