"""Ray's ``ray.util.multiprocessing.Pool``: the standard library's Pool API, run by actors
(real worker processes) on a local node."""

from __future__ import annotations

import itertools
import os
import threading
import time

import pytest

from tray.util.multiprocessing import Pool, TimeoutError


def square(x):
    return x * x


def add(a, b):
    return a + b


def pid_of(_):
    return os.getpid()


def fails_on_three(x):
    if x == 3:
        raise KeyError("three")
    return x


def nap(seconds):
    time.sleep(seconds)
    return seconds


def set_greeting(text):
    global GREETING
    GREETING = text


def greeting(_):
    return GREETING


def test_map_starmap_apply_and_their_async_forms(ray):
    with Pool(processes=2) as pool:
        assert pool.map(square, range(10)) == [x * x for x in range(10)]
        assert pool.map(square, range(7), chunksize=3) == [x * x for x in range(7)]
        assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
        assert pool.apply(add, (1,), {"b": 5}) == 6
        assert pool.map_async(square, [4]).get(timeout=60) == [16]
        assert pool.starmap_async(add, [(2, 2)]).get(timeout=60) == [4]
        result = pool.apply_async(square, (9,))
        result.wait(timeout=60)
        assert result.ready() and result.successful() and result.get() == 81
        assert pool.map(square, []) == []


def test_work_runs_in_the_pools_processes_not_here(ray):
    with Pool(processes=2) as pool:
        pids = set(pool.map(pid_of, range(8), chunksize=1))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_imap_keeps_order_imap_unordered_does_not_have_to(ray):
    with Pool(processes=2) as pool:
        assert list(pool.imap(square, range(12), chunksize=2)) == [x * x for x in range(12)]
        assert sorted(pool.imap_unordered(square, range(12))) == sorted(x * x for x in range(12))
        endless = pool.imap(square, itertools.count())  # read as it goes: an endless iterable is fine
        assert [next(endless) for _ in range(5)] == [0, 1, 4, 9, 16]
        slow = pool.imap(nap, [5])
        with pytest.raises(TimeoutError):
            slow.next(timeout=0.1)


def test_errors_come_back_as_the_function_raised_them(ray):
    with Pool(processes=2) as pool:
        with pytest.raises(KeyError, match="three"):
            pool.map(fails_on_three, range(5))
        result = pool.apply_async(fails_on_three, (3,))
        result.wait(timeout=60)
        assert not result.successful()
        with pytest.raises(KeyError):
            list(pool.imap(fails_on_three, range(5)))
        with pytest.raises(TimeoutError):
            pool.apply_async(nap, (5,)).get(timeout=0.1)


def test_callbacks_get_the_result_or_the_error(ray):
    got, errors = [], []
    done = threading.Event()
    with Pool(processes=1) as pool:
        pool.map_async(square, [1, 2], callback=got.append)
        pool.apply_async(fails_on_three, (3,), error_callback=lambda e: (errors.append(e), done.set()))
        assert done.wait(60)
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    assert got == [[1, 4]] and isinstance(errors[0], KeyError)


def test_initializer_and_maxtasksperchild(ray):
    with Pool(processes=1, initializer=set_greeting, initargs=("hi",)) as pool:
        assert pool.map(greeting, range(3)) == ["hi"] * 3
    with Pool(processes=1, maxtasksperchild=1) as pool:
        pids = [pool.apply(pid_of, (i,)) for i in range(3)]
    assert len(set(pids)) == 3  # a fresh actor for every chunk


def test_close_join_terminate_and_bad_arguments(ray):
    pool = Pool(processes=2, ray_remote_args={"num_cpus": 0.5})
    result = pool.map_async(nap, [0.2, 0.2])
    with pytest.raises(ValueError, match="still running"):
        pool.join()
    pool.close()
    with pytest.raises(ValueError, match="not running"):
        pool.map(square, [1])
    pool.join()
    assert result.ready() and result.get() == [0.2, 0.2]
    pool.terminate()
    with pytest.raises(ValueError, match="must be >0"):
        Pool(processes=0)
    with pytest.raises(ValueError, match="maxtasksperchild"):
        Pool(processes=1, maxtasksperchild=0)
    with pytest.raises(TypeError, match="initializer"):
        Pool(processes=1, initializer=3)

