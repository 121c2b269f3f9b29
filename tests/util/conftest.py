"""Fixtures for tray.util tests: one local node (2 CPUs, real worker processes) per module."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import psutil
import pytest

import tray


@pytest.fixture(scope="module")
def ray() -> Iterator[ModuleType]:
    """``tray.init(num_cpus=2)`` once for the module (workers are processes: slow to start);
    its teardown checks that ``tray.shutdown()`` took every worker with it."""
    tray.init(num_cpus=2)
    yield tray
    tray.shutdown()
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"]
    assert not left, f"tray.shutdown() left processes behind: {left}"
