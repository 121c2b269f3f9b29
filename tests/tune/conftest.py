"""Fixtures for tray.tune tests: one local node (2 CPUs, real worker processes) per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest

import tray


@pytest.fixture(scope="module")
def ray() -> Iterator[ModuleType]:
    tray.init(num_cpus=2)
    yield tray
    tray.shutdown()


@pytest.fixture(autouse=True)
def _no_tensorboard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Event files only where a test asks for them (they cost a writer thread per trial)."""
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture
def storage(tmp_path: os.PathLike) -> str:
    return str(tmp_path)
