"""Fixtures for tray.data tests: one local node (2 CPUs, a 200 MiB store) per module."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def rd() -> Iterator[ModuleType]:
    import tray.data

    tray.init(num_cpus=2, object_store_memory=200 * 2**20)
    yield tray.data
    tray.shutdown()
