"""wait_for_condition and SignalActor: the suite's one way to wait for a cluster."""

from __future__ import annotations

import time

import pytest

import tray
from tray.testing import signal_actor, wait_for_condition


def test_wait_for_condition_returns_once_true_and_names_the_last_error() -> None:
    t0 = time.monotonic()
    wait_for_condition(lambda: time.monotonic() - t0 > 0.2, timeout=10, retry_interval_ms=10)

    def broken() -> bool:
        raise KeyError("nope")

    with pytest.raises(RuntimeError, match="KeyError"):
        wait_for_condition(broken, timeout=0.2, retry_interval_ms=10)
    with pytest.raises(KeyError):
        wait_for_condition(broken, timeout=5, raise_exceptions=True)
    with pytest.raises(RuntimeError, match="was not met within 0.1 s"):
        wait_for_condition(lambda: False, timeout=0.1, retry_interval_ms=10)


def test_signal_actor_holds_tasks_until_sent() -> None:
    tray.init(num_cpus=2)
    try:
        signal = signal_actor()

        @tray.remote
        def gated(s):
            tray.get(s.wait.remote())
            return "through"

        refs = [gated.remote(signal) for _ in range(2)]
        wait_for_condition(lambda: tray.get(signal.cur_num_waiters.remote()) == 2, timeout=30)
        ready, _ = tray.wait(refs, timeout=0.2)
        assert ready == []
        tray.get(signal.send.remote())
        assert tray.get(refs, timeout=30) == ["through", "through"]
    finally:
        tray.shutdown()
