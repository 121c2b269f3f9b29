"""Lanes (tray.core._lanes): a thread that waits at once on its call to a sync actor sends it
and reads the reply itself, on a connection of its own to the actor's main thread. The
calls must behave exactly as the usual way: values, errors, order, death and restarts,
cancel, timeouts, refs in results, and calls nobody waits for."""

from __future__ import annotations

import os
import threading
import time

import pytest

import tray
from tray.core import _process
from tray.exceptions import ActorDiedError, GetTimeoutError, RayTaskError, TaskCancelledError


@tray.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.log: list[int] = []

    def add(self, k: int = 1) -> int:
        self.n += k
        self.log.append(k)
        return self.n

    def history(self) -> list[int]:
        return self.log

    def fail(self) -> None:
        raise ValueError("no luck")

    def sleep(self, s: float) -> str:
        time.sleep(s)
        return "slept"

    def wait_for(self, path: str) -> str:
        while not os.path.exists(path):
            time.sleep(0.01)
        return "done"

    def canceled(self, path: str) -> bool:
        open(path, "w").close()
        while not tray.get_runtime_context().is_canceled():
            time.sleep(0.01)
        return True

    def inner(self) -> list:
        return [tray.put("inside")]

    def die(self) -> None:
        os._exit(1)

    def pid(self) -> int:
        return os.getpid()

    def leave(self) -> None:
        tray.actor.exit_actor()


def _lanes():
    return _process.current().owner.calls.lanes


def _warm(actor) -> None:
    """Sync calls until the actor's lane is open (the first waited call asks for it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tray.get(actor.pid.remote())
        if _executor_id(actor) in _lanes().open:
            return
    raise AssertionError("no lane opened for an actor called synchronously")


def _executor_id(actor) -> str:
    return _process.current().owner.calls.actors[actor._actor_id].executor.actor_id


def test_waited_calls_take_the_lane_and_keep_order(ray):
    c = Counter.remote()
    _warm(c)
    executor_id = _executor_id(c)
    lane = _lanes().open[executor_id]
    results = [tray.get(c.add.remote(i)) for i in range(1, 201)]
    assert results == [sum(range(1, i + 1)) for i in range(1, 201)]
    assert not lane.dead and _lanes().open[executor_id] is lane  # the same lane carried them
    # a call not waited for at once still runs (the loop sends it after HOLD_S), in order
    c.add.remote(1000)
    time.sleep(0.2)
    assert tray.get(c.history.remote())[-1] == 1000
    # a burst, then a get of them all: every call runs once, in submission order
    refs = [c.add.remote(1) for _ in range(50)]
    tray.get(refs)
    assert tray.get(c.history.remote())[-50:] == [1] * 50
    tray.kill(c)


def test_errors_and_refs_in_results_come_the_usual_way(ray):
    c = Counter.remote()
    _warm(c)
    with pytest.raises(RayTaskError) as info:
        tray.get(c.fail.remote())
    assert isinstance(info.value, ValueError) and "no luck" in str(info.value)
    [inner] = tray.get(c.inner.remote())
    assert tray.get(inner) == "inside"
    assert tray.get(c.add.remote(2)) == 2  # and the lane still serves
    tray.kill(c)


def test_a_timeout_leaves_the_reply_to_the_loop(ray):
    c = Counter.remote()
    _warm(c)
    ref = c.sleep.remote(1.5)
    with pytest.raises(GetTimeoutError):
        tray.get(ref, timeout=0.2)
    assert tray.get(ref) == "slept"  # read off the lane by the loop meanwhile
    assert tray.get(c.add.remote(3)) == 3
    tray.kill(c)


def test_death_during_a_lane_call(ray):
    c = Counter.remote()
    _warm(c)
    with pytest.raises(ActorDiedError):
        tray.get(c.die.remote())
    with pytest.raises(ActorDiedError):
        tray.get(c.add.remote())


def test_a_restarted_actor_retries_the_lane_call_and_gets_a_new_lane(ray, tmp_path):
    c = Counter.options(max_restarts=1, max_task_retries=1).remote()
    _warm(c)
    first = tray.get(c.pid.remote())
    flag = tmp_path / "died-once"

    @tray.remote
    def kill_later(pid: int) -> None:
        time.sleep(0.3)
        os.kill(pid, 9)
        flag.touch()

    killer = kill_later.remote(first)
    assert tray.get(c.wait_for.remote(str(flag))) == "done"  # retried in the new incarnation
    tray.get(killer)
    second = tray.get(c.pid.remote())
    assert second != first
    assert tray.get(c.add.remote(5)) == 5
    tray.kill(c)


def test_exit_actor_through_a_lane(ray):
    c = Counter.remote()
    _warm(c)
    with pytest.raises(ActorDiedError) as info:
        tray.get(c.leave.remote())
    assert "exit_actor" in str(info.value)


def test_cancel_from_another_thread(ray, tmp_path):
    c = Counter.remote()
    _warm(c)
    started = tmp_path / "started"
    ref = c.canceled.remote(str(started))
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(_outcome(ref)))
    waiter.start()
    while not started.exists():
        time.sleep(0.01)
    tray.cancel(ref)
    waiter.join(30)
    assert got and isinstance(got[0], TaskCancelledError)
    tray.kill(c)


def _outcome(ref):
    try:
        return tray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the test looks at which
        return exc


def test_threads_share_an_actor(ray):
    c = Counter.remote()
    _warm(c)
    totals: list[int] = []

    def work() -> None:
        for _ in range(100):
            totals.append(tray.get(c.add.remote(1)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(totals) == list(range(1, 401))
    tray.kill(c)


@tray.remote
class AsyncCounter:
    def __init__(self) -> None:
        self.n = 0

    async def add(self, k: int = 1) -> int:
        self.n += k
        return self.n

    async def pid(self) -> int:
        return os.getpid()

    async def fail(self) -> None:
        raise KeyError("async no luck")

    async def nap(self, s: float) -> str:
        import asyncio

        await asyncio.sleep(s)
        return "napped"


def test_an_async_actor_reads_its_lane_in_its_loop(ray):
    c = AsyncCounter.remote()
    _warm(c)
    assert [tray.get(c.add.remote(1)) for _ in range(100)] == list(range(1, 101))
    with pytest.raises(RayTaskError, match="async no luck"):
        tray.get(c.fail.remote())
    # calls from other threads run concurrently with a lane call (an async actor's way)
    slow = c.nap.remote(1.0)
    t0 = time.monotonic()
    other: list = []
    t = threading.Thread(target=lambda: other.append(tray.get(c.add.remote(1))))
    t.start()
    t.join(30)
    assert other == [101] and time.monotonic() - t0 < 0.9
    assert tray.get(slow) == "napped"
    tray.kill(c)
