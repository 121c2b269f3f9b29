"""Lanes (tray.core._lanes): a thread that waits at once on its call to an actor, or on its
task, sends it and reads the reply itself, on a connection of its own to the actor's (or
the leased worker's) main thread. The calls must behave exactly as the usual way: values,
errors, order, death and restarts, retries, cancel, timeouts, refs in results, and calls
nobody waits for."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time

import pytest

import tray
from tray.core import _lanes as lane_module
from tray.core import _leases, _process
from tray.exceptions import (
    ActorDiedError,
    GetTimeoutError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)
from tray.util.state import list_tasks


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


# ------------------------------------------------------------------- tasks


@tray.remote
def echo(x):
    return x


@tray.remote
def boom() -> None:
    raise ValueError("task no luck")


@tray.remote
def big() -> bytes:
    return b"x" * (1 << 20)  # stored, not inline: its reply is the loop's to handle


@tray.remote
def made() -> list:
    return [tray.put("inside")]


@tray.remote
def nap(s: float, path: str) -> str:
    with open(path, "a") as f:
        f.write("ran\n")
    time.sleep(s)
    return "slept"


@tray.remote
def fails_then_works(path: str) -> str:
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    if n < 2:
        raise KeyError(f"attempt {n}")
    return f"worked after {n}"


@tray.remote
def dies_once(path: str) -> str:
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(1)
    return "second life"


@tray.remote
def until_cancelled(path: str) -> None:
    open(path, "w").close()
    time.sleep(60)


@tray.remote
def sum_of_children(n: int) -> tuple[int, bool]:
    total = sum(tray.get(echo.remote(i)) for i in range(n))
    deadline = time.monotonic() + 10
    while not _lanes().tasks_open and time.monotonic() < deadline:  # (a loaded machine: more waited tasks)
        tray.get(echo.remote(0))
    return total, _lanes().tasks_open


@pytest.fixture
def on_lanes(ray, monkeypatch):
    """The names of the tasks whose outcome came back down a lane, as a list that grows; idle
    leases linger long (a loaded machine may take more than LINGER_S between two tasks)."""
    monkeypatch.setattr(_leases, "LINGER_S", 5.0)
    owner = _process.current().owner
    seen: list = []
    answered = owner.lane_answered

    def spied(spec, *rest):
        seen.append(spec.name)
        answered(spec, *rest)

    monkeypatch.setattr(owner, "lane_answered", spied)
    deadline = time.monotonic() + 10
    while not _lanes().tasks_open:  # the first waited tasks go the usual way, and ask for a lane
        assert time.monotonic() < deadline, "no lane opened to a task worker for tasks waited on at once"
        tray.get(echo.remote(0))
    tray.get(echo.remote(0))
    return seen


def test_waited_tasks_take_a_lane(on_lanes):
    assert [tray.get(echo.remote(i)) for i in range(200)] == list(range(200))
    assert on_lanes.count("echo") >= 190, f"{on_lanes.count('echo')} of 200 waited tasks took a lane"
    # each is a task like any other: listed, FINISHED
    names = [t.name for t in list_tasks(filters=[("state", "=", "FINISHED")], limit=10_000)]
    assert names.count("echo") >= 200
    # tasks nobody waits for at once still run
    refs = [echo.remote(i) for i in range(30)]
    lone = echo.remote("alone")
    time.sleep(0.1)
    assert tray.get(refs) == list(range(30)) and tray.get(lone) == "alone"


def _laned(seen: list, name: str, run) -> None:
    """``run()`` (which checks its task's outcome) until its task ``name`` took a lane (the
    idle lease a thread finds may be on a worker no lane goes to yet: after a worker died,
    say; a few waited tasks and a moment let the owner open one)."""
    for _ in range(10):
        before = seen.count(name)
        run()
        if seen.count(name) > before:
            return
        for _ in range(3):
            tray.get(echo.remote(0))
        time.sleep(0.1)
    raise AssertionError(f"task {name} never took a lane")


_unique = itertools.count()  # file names no attempt shares


def test_lane_tasks_errors_retries_and_results_as_usual(on_lanes, tmp_path):
    def raises() -> None:
        with pytest.raises(RayTaskError) as info:
            tray.get(boom.remote())
        assert isinstance(info.value, ValueError) and "task no luck" in str(info.value)

    def retried() -> None:
        counter = str(tmp_path / f"attempts-{next(_unique)}")
        assert tray.get(fails_then_works.options(retry_exceptions=True, max_retries=3).remote(counter)) \
            == "worked after 2"

    def stored() -> None:
        assert tray.get(big.remote()) == b"x" * (1 << 20)

    def ref_inside() -> None:
        [inner] = tray.get(made.remote())
        assert tray.get(inner) == "inside"

    def nested() -> None:
        assert tray.get(sum_of_children.remote(30)) == (sum(range(30)), True)  # a worker's own waited tasks

    for name, run in [("boom", raises), ("fails_then_works", retried), ("big", stored), ("made", ref_inside),
                      ("sum_of_children", nested)]:
        _laned(on_lanes, name, run)
    assert tray.get(echo.remote("still")) == "still"


def test_a_lane_tasks_worker_dying(on_lanes, tmp_path):
    def crashes() -> None:
        with pytest.raises(WorkerCrashedError):
            tray.get(dies_once.options(max_retries=0).remote(str(tmp_path / f"a-{next(_unique)}")))

    def retried() -> None:
        assert tray.get(dies_once.options(max_retries=1).remote(str(tmp_path / f"b-{next(_unique)}"))) \
            == "second life"

    _laned(on_lanes, "dies_once", crashes)
    _laned(on_lanes, "dies_once", retried)
    assert tray.get(echo.remote(1)) == 1


def test_a_lane_task_times_out_and_is_cancelled(on_lanes, tmp_path):
    def times_out() -> None:
        runs = tmp_path / f"naps-{next(_unique)}"
        ref = nap.remote(1.5, str(runs))
        t0 = time.monotonic()
        with pytest.raises(GetTimeoutError):
            tray.get(ref, timeout=0.2)
        assert time.monotonic() - t0 < 1.0  # the get's deadline, not the lane's patience
        assert tray.get(ref) == "slept"  # read off the lane by the loop meanwhile (more than PATIENCE_S)
        assert runs.read_text() == "ran\n"  # once: the loop's long read is no lost worker

    _laned(on_lanes, "nap", times_out)
    for force in (False, True):
        def cancelled(force: bool = force) -> None:
            started = tmp_path / f"started-{next(_unique)}"
            refs: list = []
            got: list = []

            def submit_and_wait() -> None:  # the thread that waits at once on its task
                refs.append(until_cancelled.remote(str(started)))
                got.append(_outcome(refs[0]))

            waiter = threading.Thread(target=submit_and_wait)
            waiter.start()
            while not started.exists():
                time.sleep(0.01)
            tray.cancel(refs[0], force=force)
            waiter.join(30)
            assert got and isinstance(got[0], TaskCancelledError), (force, got)

        _laned(on_lanes, "until_cancelled", cancelled)
    assert tray.get(echo.remote(2)) == 2


def test_threads_wait_on_their_own_tasks(on_lanes):
    out: dict[int, list] = {}

    def work(k: int) -> None:
        out[k] = [tray.get(echo.remote((k, i))) for i in range(50)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out == {k: [(k, i) for i in range(50)] for k in range(4)}


def test_lanes_of_workers_gone_make_room(on_lanes, monkeypatch):
    """A long-lived driver outlives many workers: the lanes of those gone (killed here while
    idle, as a node reaps idle workers) stop counting against MAX_LANES, so the workers that
    come after them still get lanes."""
    lanes, owner = _lanes(), _process.current().owner
    idle = [lease for pool in owner.leases.pools.values() for lease in pool.idle
            if lease.executor.actor_id in lanes.task_lanes]
    assert idle, "no idle lease on a worker with a lane"
    for lease in idle:
        os.kill(lease.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(lease.executor.alive for lease in idle):
        assert time.monotonic() < deadline, "the killed workers still look alive"
        time.sleep(0.01)
    monkeypatch.setattr(lane_module, "MAX_LANES", len(lanes.asked))  # no room, but for the lanes of the dead

    def echoes() -> None:
        assert tray.get(echo.remote("after")) == "after"

    _laned(on_lanes, "echo", echoes)
    assert not any(lease.executor.actor_id in lanes.task_lanes for lease in idle)
