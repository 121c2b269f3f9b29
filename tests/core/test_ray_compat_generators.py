"""``tray.wait`` takes streaming generators as Ray's does (the "Ray generators" page): one is
ready when its next item is, or when it has ended, so a loop of ``wait`` + ``next`` drains
several generators as their items come."""

import time

import pytest

import tray


@tray.remote
def countdown(n, pause):
    for i in range(n):
        time.sleep(pause)
        yield i


def test_wait_on_generators(ray):
    slow, fast = countdown.remote(2, 2.0), countdown.remote(3, 0.01)
    ready, not_ready = tray.wait([slow, fast], num_returns=1, timeout=60)
    assert ready == [fast] and not_ready == [slow]
    seen = {id(slow): [], id(fast): []}
    pending = [slow, fast]
    while pending:
        (gen,), _ = tray.wait(pending, num_returns=1, timeout=60)
        try:
            seen[id(gen)].append(tray.get(next(gen), timeout=60))
        except StopIteration:  # ready because it ended: next() stops at once
            pending.remove(gen)
    assert seen == {id(slow): [0, 1], id(fast): [0, 1, 2]}


def test_wait_mixes_refs_and_generators(ray):
    gen = countdown.remote(1, 0.0)
    ref = tray.put(1)
    ready, not_ready = tray.wait([ref, gen], num_returns=2, timeout=60)
    assert ready == [ref, gen] and not_ready == []
    with pytest.raises(TypeError, match="ObjectRefs"):
        tray.wait([gen, "not a ref"])
    with pytest.raises(ValueError, match="more than once"):
        tray.wait([gen, gen])
