"""ObjectRefGenerator as Ray's: ``_next_sync(timeout_s)`` (the next item's ref within a
timeout, else the nil ref), ``next_ready()``, ``is_finished()`` and ``completed()``."""

from __future__ import annotations

import threading

import pytest

import tray


@tray.remote(num_returns="streaming")
def gated(path):
    import os
    import time

    yield 1
    while not os.path.exists(path):  # the second item waits until the test says so
        time.sleep(0.01)
    yield 2


def test_next_within_a_timeout_and_what_the_generator_says_of_itself(ray, tmp_path):
    flag = tmp_path / "go"
    gen = gated.remote(str(flag))
    assert ray.get(gen._next_sync(timeout_s=60)) == 1
    assert not gen.next_ready() and not gen.is_finished()
    done = gen.completed()
    assert ray.wait([done], timeout=0.2)[0] == []  # the task is held: it has not ended
    assert gen._next_sync(timeout_s=0.2).is_nil()  # the task is held: nothing comes (Ray's nil ref)
    threading.Timer(0.1, flag.touch).start()
    assert ray.get(done, timeout=60) is None
    assert gen.next_ready() and not gen.is_finished()
    assert ray.get(gen._next_sync(timeout_s=60)) == 2
    assert not gen.next_ready() and gen.is_finished()
    with pytest.raises(StopIteration):
        gen._next_sync(timeout_s=60)
    assert ray.get(gen.completed()) is None


@tray.remote
def breaks():
    yield 1
    raise ValueError("broke")


def test_a_generators_exception_is_an_item_not_a_failed_task(ray):
    gen = breaks.remote()
    assert ray.get(gen.completed(), timeout=60) is None
    assert ray.get(next(gen)) == 1
    with pytest.raises(ValueError, match="broke"):
        ray.get(next(gen))
    assert gen.is_finished()


def test_refs_have_rays_id_forms_and_a_nil(ray):
    ref = ray.put(1)
    assert ref.binary() == ref.hex().encode() and not ref.is_nil()
    nil = tray.ObjectRef.nil()
    assert nil.is_nil() and nil.hex() == "f" * 56 and nil != ref
