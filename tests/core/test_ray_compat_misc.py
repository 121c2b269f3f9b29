"""Small public behaviours of Ray Core: ``wait([])``, ``node:<ip>`` resources, ``ObjectRef.future()`` (a
concurrent.futures.Future) and ``ObjectRef.as_future()`` (an asyncio future)."""

import asyncio
import concurrent.futures

import pytest

import tray


@tray.remote
def slow_square(x):
    import time

    time.sleep(0.2)
    return x * x


@tray.remote
def boom():
    raise KeyError("nope")


def test_wait_on_nothing(ray):
    assert tray.wait([]) == ([], [])
    assert tray.wait([], num_returns=0, timeout=0) == ([], [])


def test_future_is_a_concurrent_future(ray):
    fut = slow_square.remote(3).future()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(timeout=60) == 9
    done = tray.put(5).future()
    assert done.result(timeout=60) == 5
    with pytest.raises(KeyError):
        boom.remote().future().result(timeout=60)


def test_as_future_in_asyncio(ray):
    async def main():
        fut = slow_square.remote(4).as_future()
        assert isinstance(fut, asyncio.Future)
        return await asyncio.wait_for(fut, 60)

    assert asyncio.run(main()) == 16


@tray.remote
def two(a, b=1, *, c=2):
    return a + b + c


@tray.remote
class Pair:
    def __init__(self, x, y=0):
        self.x = x

    def get(self):
        return self.x


def test_remote_binds_arguments_at_the_call_site(ray):
    with pytest.raises(TypeError, match="two.remote"):
        two.remote()
    with pytest.raises(TypeError):
        two.remote(1, 2, 3)
    with pytest.raises(TypeError):
        two.remote(1, d=4)
    assert tray.get(two.remote(1, c=5), timeout=60) == 7
    with pytest.raises(TypeError, match="Pair.remote"):
        Pair.remote()
    assert tray.get(Pair.remote(3, y=1).get.remote(), timeout=60) == 3


def test_async_def_task_is_rejected():
    async def coro():
        return 1

    with pytest.raises(ValueError, match="async def"):
        tray.remote(coro)


@tray.remote(num_cpus=2)
def omp_threads():
    import os

    return os.environ.get("OMP_NUM_THREADS")


def test_omp_num_threads_follows_num_cpus(ray):
    if "OMP_NUM_THREADS" in __import__("os").environ:
        pytest.skip("the driver sets OMP_NUM_THREADS: workers keep it, as in Ray")
    assert tray.get(omp_threads.remote(), timeout=60) == "2"
    assert tray.get(omp_threads.options(num_cpus=1).remote(), timeout=60) == "1"



class _Plain:
    LIMIT = 3

    @classmethod
    def make_default(cls):
        return cls.LIMIT * 2

    @staticmethod
    def helper(x):
        return x + 1


def test_actor_class_shows_the_class_attributes():
    A = tray.remote(_Plain)
    assert A.LIMIT == 3 and A.make_default() == 6 and A.helper(1) == 2
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        A.missing  # noqa: B018


def test_remote_with_empty_parentheses_is_rejected():
    with pytest.raises(TypeError, match="no arguments and no parentheses"):
        tray.remote()(_Plain)


def test_every_node_has_its_address_as_a_resource(ray):
    """Ray's ``node:<ip>`` resource (1 per node) and the head's ``node:__internal_head__``:
    asking for a sliver of one runs a task on that node."""
    ip = tray.util.get_node_ip_address()
    total = tray.cluster_resources()
    assert total[f"node:{ip}"] == 1 and total["node:__internal_head__"] == 1

    @tray.remote(resources={f"node:{ip}": 0.01})
    def where():
        return tray.util.get_node_ip_address(), tray.get_runtime_context().get_node_id()

    assert tray.get(where.remote(), timeout=60) == (ip, tray.get_runtime_context().get_node_id())
