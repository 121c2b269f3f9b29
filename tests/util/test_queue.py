"""``tray.util.queue.Queue`` over a real actor process, shared with tasks and actors."""

from __future__ import annotations

import asyncio
import pickle
import queue as stdlib_queue
import time
from types import ModuleType

import pytest
import trio

import tray
from tray.exceptions import ActorDiedError
from tray.util.queue import Empty, Full, Queue

WAIT_S = 0.2  # how long the timeout tests wait


@tray.remote
def produce(q: Queue, items: list) -> int:
    for item in items:
        q.put(item)
    return len(items)


@tray.remote
def consume(q: Queue, n: int, timeout: float | None = None) -> list:
    return [q.get(timeout=timeout) for _ in range(n)]


@tray.remote
def try_get(q: Queue) -> str:
    try:
        q.get(timeout=WAIT_S)
    except Empty:  # the class raised in a worker is the same as the driver's
        return "empty"
    return "got one"


@tray.remote
class Consumer:
    """An actor that keeps the queue it was given and drains it on demand."""

    def __init__(self, q: Queue) -> None:
        self.q = q

    def drain(self, n: int) -> list:
        return [self.q.get(timeout=5) for _ in range(n)]


@tray.remote
class AsyncConsumer:
    """An async actor awaits the queue on its own asyncio loop."""

    async def take(self, q: Queue, n: int) -> list:
        return [await q.get_async(timeout=5) for _ in range(n)]


def _elapsed(t0: float) -> float:
    return time.monotonic() - t0


# ---------------------------------------------------------------- basics


def test_fifo_and_sizes(ray: ModuleType) -> None:
    q = Queue()
    assert q.empty() and not q.full()
    assert q.size() == q.qsize() == len(q) == 0
    for i in range(5):
        q.put(i)
    assert q.size() == q.qsize() == len(q) == 5
    assert not q.empty() and not q.full()  # unbounded: never full
    assert [q.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert q.empty()
    q.shutdown()


def test_items_are_copied_values(ray: ModuleType) -> None:
    q = Queue()
    item = {"a": [1, 2], "b": None}
    q.put(item)
    item["a"].append(3)  # the queue took a copy at put time
    assert q.get() == {"a": [1, 2], "b": None}
    q.put_nowait(None)
    assert q.get_nowait() is None  # None is an item like any other
    q.shutdown()


def test_the_exceptions_are_the_standard_librarys() -> None:
    assert issubclass(Empty, stdlib_queue.Empty)
    assert issubclass(Full, stdlib_queue.Full)
    import tray.util

    assert tray.util.queue.Queue is Queue


# ------------------------------------------------------------ Full / Empty


def test_full_without_blocking(ray: ModuleType) -> None:
    q = Queue(maxsize=2)
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.size() == 2
    with pytest.raises(Full):
        q.put(3, block=False)
    with pytest.raises(stdlib_queue.Full):  # ported code catching queue.Full works
        q.put_nowait(3)
    assert [q.get(), q.get()] == [1, 2]  # the refused item was not added
    q.shutdown()


def test_empty_without_blocking(ray: ModuleType) -> None:
    q = Queue()
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(stdlib_queue.Empty):
        q.get_nowait()
    q.put(1)
    assert q.get(block=False) == 1
    q.shutdown()


def test_put_times_out_when_full(ray: ModuleType) -> None:
    q = Queue(maxsize=1)
    q.put(1)
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put(2, timeout=WAIT_S)
    assert WAIT_S * 0.9 <= _elapsed(t0) < WAIT_S + 2
    assert q.size() == 1
    assert q.get() == 1
    q.shutdown()


def test_get_times_out_when_empty(ray: ModuleType) -> None:
    q = Queue()
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=WAIT_S)
    assert WAIT_S * 0.9 <= _elapsed(t0) < WAIT_S + 2
    with pytest.raises(Empty):
        q.get(timeout=0)
    q.shutdown()


def test_a_timeout_is_ignored_when_not_blocking(ray: ModuleType) -> None:
    q = Queue(maxsize=1)
    q.put(1, block=False, timeout=-1)  # as Ray: only a blocking call looks at timeout
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put(2, block=False, timeout=10)
    assert _elapsed(t0) < 5
    q.shutdown()


def test_negative_timeouts_are_refused(ray: ModuleType) -> None:
    q = Queue()
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-0.5)
    assert q.empty()
    q.shutdown()


# ----------------------------------------------------------------- batches


def test_batches(ray: ModuleType) -> None:
    q = Queue(maxsize=4)
    q.put_nowait_batch([1, 2, 3])
    assert q.size() == 3
    with pytest.raises(Full, match="Cannot add 2 items"):
        q.put_nowait_batch([4, 5])
    assert q.size() == 3  # all or nothing
    q.put_nowait_batch(x for x in [4])  # any iterable
    assert q.full()
    with pytest.raises(Empty, match="Cannot get 5 items"):
        q.get_nowait_batch(5)
    assert q.size() == 4  # all or nothing
    assert q.get_nowait_batch(3) == [1, 2, 3]
    assert q.get_nowait_batch(0) == []
    assert q.get_nowait_batch(1) == [4]
    q.shutdown()


def test_batch_arguments_are_checked(ray: ModuleType) -> None:
    q = Queue()
    with pytest.raises(TypeError, match="Iterable"):
        q.put_nowait_batch(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        q.get_nowait_batch("2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonnegative"):
        q.get_nowait_batch(-1)
    q.put_nowait_batch([])
    assert q.empty()
    q.shutdown()


# ------------------------------------------------- shared with other processes


def test_a_producer_task_and_the_driver_share_the_queue(ray: ModuleType) -> None:
    q = Queue()
    done = produce.remote(q, list(range(10)))
    assert [q.get(timeout=10) for _ in range(10)] == list(range(10))
    assert ray.get(done) == 10
    assert q.empty()
    q.shutdown()


def test_a_blocked_get_wakes_up_on_a_put_elsewhere(ray: ModuleType) -> None:
    q = Queue()
    waiting = consume.remote(q, 2)
    ready, _ = ray.wait([waiting], timeout=WAIT_S)
    assert not ready  # the consumer waits for items
    q.put("a")
    q.put("b")
    assert ray.get(waiting, timeout=10) == ["a", "b"]
    q.shutdown()


def test_a_blocked_put_waits_for_room(ray: ModuleType) -> None:
    q = Queue(maxsize=1)
    done = produce.remote(q, [1, 2, 3])  # can only put one at a time
    got = [q.get(timeout=10) for _ in range(3)]
    assert got == [1, 2, 3]
    assert ray.get(done, timeout=10) == 3
    q.shutdown()


def test_empty_in_a_worker_is_the_same_class(ray: ModuleType) -> None:
    q = Queue()
    assert ray.get(try_get.remote(q)) == "empty"
    q.shutdown()


def test_an_actor_holding_the_queue(ray: ModuleType) -> None:
    q = Queue()
    consumer = Consumer.remote(q)
    q.put_nowait_batch(["x", "y", "z"])
    assert ray.get(consumer.drain.remote(3)) == ["x", "y", "z"]
    assert q.empty()
    ray.kill(consumer)
    q.shutdown()


def test_an_async_actor_awaits_the_queue(ray: ModuleType) -> None:
    q = Queue()
    consumer = AsyncConsumer.remote()
    taken = consumer.take.remote(q, 3)
    for i in range(3):
        q.put(i)
    assert ray.get(taken, timeout=10) == [0, 1, 2]
    ray.kill(consumer)
    q.shutdown()


def test_the_queue_pickles_as_a_handle(ray: ModuleType) -> None:
    q = Queue(maxsize=3)
    copy = pickle.loads(pickle.dumps(q))
    assert copy.maxsize == 3
    copy.put("from the copy")
    assert q.get() == "from the copy"
    q.shutdown()


def test_actor_options_are_passed_to_the_actor(ray: ModuleType) -> None:
    q = Queue(actor_options={"name": "util-test-queue", "num_cpus": 0})
    q.put(1)
    handle = ray.get_actor("util-test-queue")
    assert ray.get(handle.qsize.remote()) == 1
    q.shutdown()


# ----------------------------------------------------------------- async


def test_put_async_and_get_async_under_asyncio(ray: ModuleType) -> None:
    q = Queue(maxsize=1)

    async def main() -> list:
        getter = asyncio.ensure_future(q.get_async())
        await asyncio.sleep(0.05)
        assert not getter.done()  # waiting for an item, without blocking the loop
        await q.put_async("one")
        await q.put_async("two")
        with pytest.raises(Full):
            await q.put_async("three", block=False)
        with pytest.raises(Full):
            await q.put_async("three", timeout=0.05)
        out = [await getter, await q.get_async(timeout=1)]
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.05)
        with pytest.raises(ValueError):
            await q.get_async(timeout=-1)
        return out

    assert asyncio.run(main()) == ["one", "two"]
    q.shutdown()


def test_put_async_and_get_async_under_trio(ray: ModuleType) -> None:
    q = Queue()

    async def main() -> list:
        out = []
        async with trio.open_nursery() as nursery:
            async def getter() -> None:
                out.append(await q.get_async())

            nursery.start_soon(getter)
            await trio.sleep(0.05)
            assert not out
            await q.put_async(42)
        with pytest.raises(Empty):
            await q.get_async(block=False)
        return out

    assert trio.run(main) == [42]
    q.shutdown()


# --------------------------------------------------------------- shutdown


def test_shutdown(ray: ModuleType) -> None:
    q = Queue()
    q.put(1)
    actor = q.actor
    q.shutdown()
    assert q.actor is None
    with pytest.raises(RuntimeError, match="shut down"):
        q.put(2)
    q.shutdown()  # twice is fine
    with pytest.raises(ActorDiedError):
        ray.get(actor.qsize.remote())


def test_shutdown_force_fails_blocked_calls(ray: ModuleType) -> None:
    q = Queue()
    blocked = q.actor.get.remote(None)  # type: ignore[union-attr]
    ready, _ = ray.wait([blocked], timeout=0.05)
    assert not ready
    q.shutdown(force=True)
    with pytest.raises(ActorDiedError):
        ray.get(blocked, timeout=10)


def test_shutdown_waits_for_earlier_calls_up_to_the_grace_period(ray: ModuleType) -> None:
    q = Queue()
    for i in range(20):
        q.actor.put_nowait.remote(i)  # type: ignore[union-attr]  # sent, not waited for
    t0 = time.monotonic()
    q.shutdown(grace_period_s=5)
    assert _elapsed(t0) < 5
