"""Fixtures for Train's tests: a 2-CPU tray, a storage directory, the 8x8 digits."""

from __future__ import annotations

import numpy as np
import pytest

import tray


@pytest.fixture
def tray2():
    tray.init(num_cpus=2)
    yield
    tray.shutdown()


@pytest.fixture
def storage(tmp_path):
    return str(tmp_path / "results")


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_digits()


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8x8 digits as (float32 images scaled to [0, 1], int64 labels)."""
    try:
        from tray.tune.examples.mnist_pytorch import (
            load_digits as tune_digits,  # the copy tray ships
        )
    except ImportError:
        from sklearn.datasets import load_digits as sk_digits

        d = sk_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    x, y = tune_digits()
    return np.asarray(x, dtype=np.float32).reshape(len(y), -1), np.asarray(y, dtype=np.int64)
