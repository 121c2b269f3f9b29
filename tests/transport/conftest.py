"""Fixtures for transport tests: real worker processes on unix sockets, cleaned up always."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_procs import Workers


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def sockdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tray-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
