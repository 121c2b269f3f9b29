"""ObjectRefGenerator.next_ready: the next item's ref within a timeout."""

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


def test_next_ready_returns_items_and_times_out_while_none_comes(ray, tmp_path):
    flag = tmp_path / "go"
    gen = gated.remote(str(flag))
    assert ray.get(gen.next_ready(timeout=60)) == 1
    with pytest.raises(TimeoutError, match="no item of streaming task"):
        gen.next_ready(timeout=0.2)  # the task is held: nothing comes
    threading.Timer(0.1, flag.touch).start()
    assert ray.get(gen.next_ready(timeout=60)) == 2
    with pytest.raises(StopIteration):
        gen.next_ready(timeout=60)
    assert gen.completed()
