"""``tray.cancel`` of actor calls, as Ray documents it: a call still waiting never runs
(TaskCancelledError); a running async call's asyncio task is cancelled; a running sync call
goes on and sees ``get_runtime_context().is_canceled()`` (its caller gets TaskCancelledError
all the same); ``force`` is refused for actor calls."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import tray
from tray.exceptions import TaskCancelledError


@tray.remote
class AsyncWorker:
    def __init__(self) -> None:
        self.saw_cancel = False

    async def sleep(self, seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.saw_cancel = True
            raise
        return "slept"

    async def cancelled_seen(self) -> bool:
        return self.saw_cancel


@tray.remote
class SyncWorker:
    def __init__(self) -> None:
        self.ran: list[str] = []

    def hold(self, path: str) -> str:
        while not os.path.exists(path):  # until the test says so
            time.sleep(0.01)
        return "held"

    def record(self, name: str) -> str:
        self.ran.append(name)
        return name

    def until_cancelled(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if tray.get_runtime_context().is_canceled():
                self.ran.append("stopped early")
                return "stopped early"
            time.sleep(0.01)
        return "never cancelled"

    def names(self) -> list[str]:
        return self.ran


def _wait_running(actor_ref_probe) -> None:
    """Give a call time to start in its actor (it reports nothing: a short pause)."""
    time.sleep(0.3)


def test_a_running_async_call_is_cancelled_in_its_actor(ray):
    a = AsyncWorker.remote()
    ray.get(a.cancelled_seen.remote(), timeout=60)  # the actor is up
    ref = a.sleep.remote(30)
    _wait_running(ref)
    ray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)
    assert ray.get(a.cancelled_seen.remote(), timeout=60)
    assert ray.get(a.sleep.remote(0), timeout=60) == "slept"  # the actor goes on


def test_a_waiting_call_never_runs_and_a_running_sync_call_sees_is_canceled(ray, tmp_path):
    w = SyncWorker.remote()
    ray.get(w.names.remote(), timeout=60)
    flag = tmp_path / "go"
    held = w.hold.remote(str(flag))
    skipped = w.record.remote("skipped")  # sent, waiting behind hold
    _wait_running(held)
    ray.cancel(skipped)
    flag.touch()
    assert ray.get(held, timeout=60) == "held"
    with pytest.raises(TaskCancelledError):
        ray.get(skipped, timeout=60)
    running = w.until_cancelled.remote()
    _wait_running(running)
    ray.cancel(running)
    with pytest.raises(TaskCancelledError):  # it ended gracefully, and its caller hears it was cancelled
        ray.get(running, timeout=60)
    assert ray.get(w.record.remote("after"), timeout=60) == "after"
    assert ray.get(w.names.remote(), timeout=60) == ["stopped early", "after"]


def test_force_is_refused_and_a_finished_call_keeps_its_result(ray, tmp_path):
    w = SyncWorker.remote()
    flag = tmp_path / "go"
    held = w.hold.remote(str(flag))
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        ray.cancel(held, force=True)
    flag.touch()
    assert ray.get(held, timeout=60) == "held"
    ray.cancel(held)  # done already: nothing happens
    assert ray.get(held, timeout=60) == "held"


def test_is_canceled_is_for_calls_in_workers(ray):
    with pytest.raises(RuntimeError, match="only"):  # Ray's: "only available when the process is a worker"
        ray.get_runtime_context().is_canceled()


@tray.remote
def endless():
    i = 0
    while True:
        yield i
        i += 1
        time.sleep(0.02)


def test_cancel_takes_a_streaming_generator(ray):
    gen = endless.remote()
    assert ray.get(next(gen), timeout=60) == 0
    ray.cancel(gen)
    with pytest.raises(TaskCancelledError):  # items already here come first, then the cancellation
        for ref in gen:
            ray.get(ref, timeout=60)
    with pytest.raises(TypeError, match="ObjectRef or ObjectRefGenerator"):
        ray.cancel("not a ref")
