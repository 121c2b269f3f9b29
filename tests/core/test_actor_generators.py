"""Generator methods on actors stream, as Ray's do (the "Ray generators" page): a method that
yields (sync, or async on an async actor) returns an ObjectRefGenerator whose refs come as the
method yields; an error ends the stream with one last item that raises it, and so does the
actor's death."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import tray
from tray.exceptions import ActorDiedError


@tray.remote
class Producer:
    def count(self, n):
        yield from range(n)  # (Ray 2.60 fails on this one: its worker calls send() on range's iterator)

    def gated(self, path):
        yield "first"
        while not os.path.exists(path):  # the second item waits until the test says so
            time.sleep(0.01)
        yield "second"

    def fails_after(self, n):
        yield from range(n)
        raise ValueError("the generator broke")

    def forever(self):
        i = 0
        while True:
            yield i
            i += 1
            time.sleep(0.05)

    def plain(self):
        return "plain"


@tray.remote
class AsyncProducer:
    async def count(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 10

    def sync_count(self, n):  # a plain generator on an async actor streams too
        yield from range(n)


@tray.remote(max_concurrency=2)
class Threaded:
    def count(self, n):
        yield from range(n)


def test_a_generator_method_returns_an_object_ref_generator(ray):
    p = Producer.remote()
    gen = p.count.remote(3)
    assert isinstance(gen, tray.ObjectRefGenerator)
    assert [ray.get(ref, timeout=60) for ref in gen] == [0, 1, 2]
    assert ray.get(p.plain.remote(), timeout=60) == "plain"  # plain calls after it, as before


def test_items_come_as_the_method_yields_them(ray, tmp_path):
    flag = tmp_path / "go"
    p = Producer.remote()
    gen = p.gated.remote(str(flag))
    assert ray.get(gen._next_sync(timeout_s=60), timeout=60) == "first"  # while the method still runs
    assert gen._next_sync(timeout_s=0.2).is_nil()
    threading.Timer(0.1, flag.touch).start()
    assert ray.get(next(gen), timeout=60) == "second"
    with pytest.raises(StopIteration):
        next(gen)
    assert gen.is_finished() and ray.get(gen.completed(), timeout=60) is None


def test_an_error_is_the_last_item(ray):
    p = Producer.remote()
    gen = p.fails_after.remote(2)
    assert [ray.get(next(gen), timeout=60) for _ in range(2)] == [0, 1]
    with pytest.raises(ValueError, match="the generator broke"):
        ray.get(next(gen), timeout=60)
    with pytest.raises(StopIteration):
        next(gen)
    assert ray.get(p.plain.remote(), timeout=60) == "plain"  # the actor lives on


def test_async_generator_methods_stream(ray):
    p = AsyncProducer.remote()
    assert [ray.get(ref, timeout=60) for ref in p.count.remote(3)] == [0, 10, 20]
    assert [ray.get(ref, timeout=60) for ref in p.sync_count.remote(2)] == [0, 1]


def test_a_threaded_actor_streams(ray):
    t = Threaded.remote()
    a, b = t.count.remote(3), t.count.remote(2)
    assert [ray.get(r, timeout=60) for r in a] == [0, 1, 2]
    assert [ray.get(r, timeout=60) for r in b] == [0, 1]


def test_num_returns_still_splits_a_generator_into_refs(ray):
    p = Producer.remote()
    refs = p.count.options(num_returns=2).remote(2)
    assert ray.get(refs, timeout=60) == [0, 1]


def test_the_actor_dying_ends_the_stream_with_its_error(ray):
    p = Producer.remote()
    gen = p.forever.remote()
    assert ray.get(next(gen), timeout=60) == 0
    ray.kill(p)
    with pytest.raises(ActorDiedError):  # items already here may come first; then the death
        for ref in gen:
            ray.get(ref, timeout=60)
    with pytest.raises(StopIteration):
        next(gen)
    with pytest.raises(ActorDiedError):  # the call did not complete
        ray.get(gen.completed(), timeout=60)


def test_wait_and_async_iteration_take_actor_generators(ray):
    p = Producer.remote()
    gen = p.count.remote(2)
    ready, _ = ray.wait([gen], num_returns=1, timeout=60)
    assert ready == [gen]

    async def drain():
        return [await ref async for ref in p.count.remote(3)]

    assert asyncio.run(drain()) == [0, 1, 2]
