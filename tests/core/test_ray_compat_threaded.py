"""Threaded actors (Ray's): a sync actor with max_concurrency=N runs up to N calls at once in
a thread pool, so calls that wait on each other do not deadlock; concurrency groups give
groups of methods pools (sync) or limits (async) of their own."""

import asyncio
import threading
import time

import pytest

import tray


@tray.remote(max_concurrency=3)
class Rendezvous:
    def __init__(self):
        self.barrier = threading.Barrier(3, timeout=60)
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def meet(self):
        """Returns only once three calls are in here at the same time."""
        return self.barrier.wait() >= 0

    def busy(self):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.2)
        with self.lock:
            self.running -= 1
        return threading.current_thread().name

    def peak_seen(self):
        return self.peak


def test_threaded_actor_runs_calls_at_once(ray):
    a = Rendezvous.remote()
    assert tray.get([a.meet.remote() for _ in range(3)], timeout=60) == [True] * 3
    names = tray.get([a.busy.remote() for _ in range(6)], timeout=60)
    assert all(n.startswith("tray-actor") for n in names)
    assert tray.get(a.peak_seen.remote(), timeout=60) <= 3


@tray.remote(concurrency_groups={"io": 2, "compute": 1})
class Grouped:
    def __init__(self):
        self.event = threading.Event()

    @tray.method(concurrency_group="io")
    def wait_io(self):
        return self.event.wait(60)

    @tray.method(concurrency_group="io")
    def release(self):
        self.event.set()
        return threading.current_thread().name

    @tray.method(concurrency_group="compute")
    def compute(self):
        return threading.current_thread().name

    def default(self):
        return threading.current_thread().name


def test_sync_concurrency_groups(ray):
    g = Grouped.remote()
    waiting = g.wait_io.remote()
    assert tray.get(g.compute.remote(), timeout=60).startswith("tray-compute")  # not held up by io
    assert tray.get(g.default.remote(), timeout=60) == "MainThread"
    assert tray.get(g.release.remote(), timeout=60).startswith("tray-io")
    assert tray.get(waiting, timeout=60) is True
    # a call may pick its group with .options()
    assert tray.get(g.default.options(concurrency_group="compute").remote(), timeout=60).startswith("tray-compute")
    with pytest.raises(ValueError, match="no concurrency group 'nope'"):
        tray.get(g.default.options(concurrency_group="nope").remote(), timeout=60)


@tray.remote(concurrency_groups={"one": 1}, max_concurrency=10)
class AsyncGrouped:
    def __init__(self):
        self.inside = 0
        self.peak = 0

    @tray.method(concurrency_group="one")
    async def serial(self):
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        await asyncio.sleep(0.05)
        self.inside -= 1

    async def peak_seen(self):
        return self.peak


def test_async_concurrency_group_limits(ray):
    a = AsyncGrouped.remote()
    tray.get([a.serial.remote() for _ in range(5)], timeout=60)
    assert tray.get(a.peak_seen.remote(), timeout=60) == 1


def test_concurrency_groups_are_checked(ray):
    class Plain:
        pass

    for bad in ({"io": 0}, {"io": 1.5}, {1: 2}):
        with pytest.raises(ValueError, match="concurrency_groups"):
            tray.remote(concurrency_groups=bad)(Plain)
