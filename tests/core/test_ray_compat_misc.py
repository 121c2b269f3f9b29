"""Small public behaviours of Ray Core: ``wait([])``, ``ObjectRef.future()`` (a
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
