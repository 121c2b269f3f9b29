"""A ``Pool`` made before ``tray.init()`` starts tray, as Ray's starts Ray (a module of its
own: the other pool tests share a running node)."""

from __future__ import annotations

import tray
from tray.util.multiprocessing import Pool


def square(x):
    return x * x


def test_a_pool_starts_tray_when_this_process_has_not():
    assert not tray.is_initialized()
    try:
        with Pool(processes=1) as pool:
            assert pool.map(square, [3]) == [9]
        assert tray.is_initialized()
    finally:
        tray.shutdown()
