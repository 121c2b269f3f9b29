"""Drivers for the debugger's tests, and ``tray debug`` run as a real terminal program."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pexpect
import pytest

import tray
from tray import lowlevel
from tray.debug import _registry

TIMEOUT_S = 60  # the machine is shared: generous


@pytest.fixture
def driver() -> Iterator[None]:
    tray.init(num_cpus=2)
    yield
    tray.shutdown()


@pytest.fixture
def sessions() -> Any:
    """``sessions(n)``: the listed debugger sessions, once there are ``n`` of them."""
    return wait_for_sessions


def wait_for_sessions(n: int, timeout: float = TIMEOUT_S) -> list[dict[str, Any]]:
    """The listed sessions once there are ``n`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = _registry.sessions(lowlevel.control_call)
        if len(found) >= n or time.monotonic() > deadline:
            assert len(found) == n, f"expected {n} debugger sessions, found {found}"
            return found
        time.sleep(0.1)


@pytest.fixture
def tray_debug(tmp_path: Any) -> Iterator[Any]:
    """``start(*args)``: ``tray debug`` on a pty for this driver's cluster (HOME in tmp_path, for
    its history file); every one started is closed after the test."""
    started: list[pexpect.spawn] = []

    def start(*args: str) -> pexpect.spawn:
        address, _token = lowlevel.find_cluster()
        env = {**os.environ, "HOME": str(tmp_path), "TERM": "dumb"}
        child = pexpect.spawn(sys.executable, ["-m", "tray", "debug", "--address", address, *args], env=env,
                              encoding="utf-8", timeout=TIMEOUT_S, dimensions=(50, 200))
        started.append(child)
        return child

    yield start
    for child in started:
        if child.isalive():
            child.sendcontrol("c")
            child.expect(pexpect.EOF)
        child.close()
