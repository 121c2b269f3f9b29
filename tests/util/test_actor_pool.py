"""``tray.util.ActorPool`` over real actor processes, with Ray's semantics."""

from __future__ import annotations

import os
import time
from types import ModuleType

import pytest

import tray
from tray.exceptions import ActorDiedError, GetTimeoutError, RayTaskError
from tray.util import ActorPool

SLOW_S = 0.4  # long enough to be surely the last to finish, short enough for the suite


@tray.remote
class Worker:
    def double(self, v: int) -> int:
        return 2 * v

    def slow_double(self, v: int, seconds: float) -> int:
        time.sleep(seconds)
        return 2 * v

    def double_or_fail(self, v: int) -> int:
        if v == 2:
            raise ValueError(f"bad value {v}")
        return 2 * v

    def pid(self, _v: object = None) -> int:
        return os.getpid()

    def pair(self, v: int) -> tuple[int, int]:
        return v, -v

    def relay(self, other: object) -> int:
        """Calls another actor; its errors (ActorDiedError included) become this method's."""
        return tray.get(other.double.remote(1))  # type: ignore[attr-defined]


@tray.remote
class AsyncWorker:
    async def double(self, v: int) -> int:
        return 2 * v


def double(a, v):
    return a.double.remote(v)


def slow(a, v):
    """``v`` is (value, seconds)."""
    return a.slow_double.remote(*v)


@pytest.fixture(scope="module")
def actors(ray: ModuleType) -> list:
    """Two stateless actors shared by the module's tests (each actor is a process)."""
    pair = [Worker.remote(), Worker.remote()]
    ray.get([a.pid.remote() for a in pair])
    return pair


# ------------------------------------------------------------------------ map


def test_map_returns_results_in_submission_order(actors: list) -> None:
    pool = ActorPool(actors)
    # the first value finishes last, yet comes first
    values = [(0, SLOW_S), (1, 0.0), (2, 0.0), (3, 0.0)]
    assert list(pool.map(slow, values)) == [0, 2, 4, 6]
    assert not pool.has_next()


def test_map_unordered_yields_results_as_they_finish(actors: list) -> None:
    pool = ActorPool(actors)
    values = [(0, SLOW_S), (1, 0.0), (2, 0.0), (3, 0.0)]
    results = list(pool.map_unordered(slow, values))
    assert sorted(results) == [0, 2, 4, 6]
    assert results[-1] == 0  # the slow one: the other actor ran the rest meanwhile


def test_map_submits_at_once_and_is_lazy_to_collect(actors: list) -> None:
    pool = ActorPool(actors)
    results = pool.map(double, [1, 2, 3])
    assert pool.has_next() and not pool.has_free()  # both actors busy, one value queued
    assert next(results) == 2
    assert list(results) == [4, 6]


def test_map_with_many_values_and_an_empty_list(actors: list) -> None:
    pool = ActorPool(actors)
    assert list(pool.map(double, range(20))) == [2 * v for v in range(20)]
    assert list(pool.map(double, [])) == []
    assert sorted(pool.map_unordered(double, range(20))) == [2 * v for v in range(20)]


def test_map_ignores_earlier_submissions(actors: list) -> None:
    pool = ActorPool(actors)
    for v in (100, 200, 300):  # two start, one is queued
        pool.submit(double, v)
    assert list(pool.map(double, [1, 2])) == [2, 4]
    pool.submit(double, 100)
    assert sorted(pool.map_unordered(double, [1, 2])) == [2, 4]
    assert pool.has_free()


def test_map_over_async_actors(ray: ModuleType) -> None:
    pool = ActorPool([AsyncWorker.remote(), AsyncWorker.remote()])
    assert list(pool.map(double, range(6))) == [0, 2, 4, 6, 8, 10]


# ------------------------------------------------------- submit and get_next*


def test_submit_then_get_next_in_order(actors: list) -> None:
    pool = ActorPool(actors)
    assert not pool.has_next()
    pool.submit(slow, (1, 0.1))
    pool.submit(double, 2)
    assert pool.has_next()
    assert pool.get_next() == 2
    assert pool.get_next() == 4
    assert not pool.has_next()


def test_get_next_unordered_returns_the_first_ready(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(slow, (1, SLOW_S))
    pool.submit(double, 2)
    assert pool.get_next_unordered() == 4
    assert pool.get_next_unordered() == 2
    assert not pool.has_next()


@pytest.mark.parametrize("method", ["get_next", "get_next_unordered"])
def test_get_next_when_nothing_is_pending_raises_stop_iteration(actors: list, method: str) -> None:
    pool = ActorPool(actors)
    with pytest.raises(StopIteration, match="No more results to get"):
        getattr(pool, method)()


def test_submits_wait_for_a_free_actor(ray: ModuleType, actors: list) -> None:
    """With one actor, the values queue in the pool and run one after another on it."""
    pool = ActorPool([actors[0]])
    for _ in range(3):
        pool.submit(lambda a, v: a.pid.remote(v), None)
    assert not pool.has_free()
    pids = [pool.get_next() for _ in range(3)]
    assert pids == [ray.get(actors[0].pid.remote())] * 3
    assert pool.has_free()


def test_results_of_num_returns_2_calls(actors: list) -> None:
    pool = ActorPool(actors)

    def pair(a, v):
        return a.pair.options(num_returns=2).remote(v)

    assert list(pool.map(pair, [1, 2, 3])) == [[1, -1], [2, -2], [3, -3]]
    assert sorted(pool.map_unordered(pair, [1, 2, 3])) == [[1, -1], [2, -2], [3, -3]]


def test_fn_must_return_an_object_ref(actors: list) -> None:
    pool = ActorPool(actors)
    with pytest.raises(TypeError, match="must return an ObjectRef"):
        pool.submit(lambda a, v: v, 1)
    assert pool.has_free() and not pool.has_next()  # the actor was not lost
    assert list(pool.map(double, [1, 2])) == [2, 4]


def test_get_next_after_get_next_unordered_is_refused(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(double, 1)
    pool.submit(double, 2)
    pool.get_next_unordered()
    pool.get_next_unordered()
    pool.submit(double, 3)
    assert pool.get_next() == 6  # a fresh submission is fine
    pool.submit(slow, (4, SLOW_S))
    pool.submit(double, 5)
    assert pool.get_next_unordered() == 10
    with pytest.raises(ValueError, match="not allowed to call get_next"):
        pool.get_next()
    assert pool.get_next_unordered() == 8


# ------------------------------------------------------------------ timeouts


@pytest.mark.parametrize("method", ["get_next", "get_next_unordered"])
def test_timeout_raises_and_keeps_the_task(actors: list, method: str) -> None:
    pool = ActorPool(actors)
    pool.submit(slow, (1, SLOW_S))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="Timed out waiting for result") as info:
        getattr(pool, method)(timeout=0.05)
    assert isinstance(info.value, GetTimeoutError)
    assert 0.04 <= time.monotonic() - t0 < SLOW_S
    assert pool.has_next()
    assert getattr(pool, method)() == 2
    assert not pool.has_next()


def test_get_next_ignore_if_timedout_drops_the_task(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(slow, (1, SLOW_S))
    pool.submit(double, 2)
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)
    assert pool.get_next() == 4
    assert not pool.has_next()
    assert pool.has_free()  # the dropped task's actor is back in the pool


def test_get_next_unordered_ignore_if_timedout_drops_the_oldest(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(slow, (1, SLOW_S))
    pool.submit(slow, (2, SLOW_S))
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next_unordered(timeout=0.05, ignore_if_timedout=True)
    assert pool.get_next_unordered() == 4
    assert not pool.has_next()


def test_timeout_zero_returns_a_ready_result(ray: ModuleType, actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(double, 1)
    ray.wait([actors[0].pid.remote(), actors[1].pid.remote()], num_returns=2)  # both actors idle again
    assert pool.get_next(timeout=0) == 2


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize("mapper", ["map", "map_unordered"])
def test_a_task_error_propagates_and_the_pool_goes_on(actors: list, mapper: str) -> None:
    pool = ActorPool(actors)
    results = getattr(pool, mapper)(lambda a, v: a.double_or_fail.remote(v), [1, 2, 3])
    seen = []
    with pytest.raises(ValueError, match="bad value 2") as info:
        for r in results:
            seen.append(r)
    assert isinstance(info.value, RayTaskError)
    if mapper == "map":
        assert seen == [2]
    # the actor that raised is fine and back in the pool
    assert sorted(pool.map(double, [1, 2, 3, 4])) == [2, 4, 6, 8]
    assert pool.has_free()


def test_get_next_raises_the_tasks_error(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.double_or_fail.remote(v), 2)
    pool.submit(double, 3)
    with pytest.raises(ValueError, match="bad value 2"):
        pool.get_next()
    assert pool.get_next() == 6


def test_a_dead_actor_leaves_the_pool(ray: ModuleType) -> None:
    victim = Worker.remote()
    pool = ActorPool([victim])
    ray.kill(victim)
    pool.submit(double, 1)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert not pool.has_next()
    assert pool.pop_idle() is None  # not handed out again


def test_an_actor_died_error_raised_by_the_method_keeps_the_actor(ray: ModuleType, actors: list) -> None:
    """The actor that ran the method is alive: only its callee died."""
    victim = Worker.remote()
    ray.kill(victim)
    pool = ActorPool([actors[0]])
    pool.submit(lambda a, v: a.relay.remote(v), victim)
    with pytest.raises(ActorDiedError) as info:
        pool.get_next()
    assert isinstance(info.value, RayTaskError)
    assert pool.pop_idle() == actors[0]


# --------------------------------------------------------- has_free, push, pop_idle


def test_has_free_and_pop_idle(actors: list) -> None:
    a1 = actors[0]
    pool = ActorPool([a1])
    assert pool.has_free()
    pool.submit(double, 1)
    assert not pool.has_free()
    assert pool.pop_idle() is None
    assert pool.get_next() == 2
    assert pool.pop_idle() == a1
    assert not pool.has_free() and pool.pop_idle() is None


def test_has_free_is_false_while_submits_wait(actors: list) -> None:
    pool = ActorPool(actors)
    pool.submit(slow, (1, 0.1))
    pool.submit(slow, (2, 0.1))
    pool.submit(double, 3)  # waits
    pool.get_next()  # an actor comes back and takes the waiting value at once
    assert not pool.has_free()
    pool.get_next()
    assert pool.has_free()  # one idle, nothing waits
    assert pool.get_next() == 6


def test_push_adds_an_actor_that_takes_waiting_work(actors: list) -> None:
    pool = ActorPool([])
    pool.submit(double, 1)
    assert not pool.has_next() and not pool.has_free()  # as Ray: queued work is not "next" yet
    pool.push(actors[0])
    assert pool.has_next()
    assert pool.get_next() == 2
    pool.push(actors[1])
    assert list(pool.map(double, [1, 2, 3])) == [2, 4, 6]


def test_push_refuses_an_actor_already_in_the_pool(actors: list) -> None:
    a1, a2 = actors
    pool = ActorPool([a1])
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)  # idle
    pool.submit(double, 1)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)  # busy
    pool.push(a2)
    assert pool.get_next() == 2


def test_ported_ray_code_runs_unchanged(ray: ModuleType, actors: list) -> None:
    """Ray's documented example, through ``import tray as ray``."""
    from tray.util import ActorPool as RayActorPool  # ray.util.ActorPool

    pool = RayActorPool(actors)
    assert list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4])) == [2, 4, 6, 8]
    pool.submit(lambda a, v: a.double.remote(v), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    assert (pool.get_next(), pool.get_next()) == (2, 4)
