"""Ray's small ``ray.util`` helpers: ``as_completed`` and ``map_unordered`` (results as they
finish), custom serializers (``register_serializer``) and ``inspect_serializability``."""

from __future__ import annotations

import io
import itertools
import threading
import time

import pytest

import tray
from tray.util import (
    as_completed,
    deregister_serializer,
    inspect_serializability,
    map_unordered,
    register_serializer,
)


@tray.remote
def nap(seconds):
    time.sleep(seconds)
    return seconds


@tray.remote
def double(x):
    return 2 * x


class Locked:
    """Holds a lock, so pickle refuses it unless a serializer is registered."""

    def __init__(self, value):
        self.value = value
        self.lock = threading.Lock()


@tray.remote
def value_of(obj):
    return obj.value, type(obj.lock).__name__


def test_as_completed_yields_the_fast_ones_first(ray):
    refs = [nap.remote(s) for s in (3.0, 0.0, 0.0)]
    got = as_completed(refs, chunk_size=1, timeout=120)
    assert next(got) == 0.0 and next(got) == 0.0  # before the slow one
    assert list(got) == [3.0]
    assert sorted(as_completed([double.remote(i) for i in range(5)], chunk_size=2)) == [0, 2, 4, 6, 8]
    refs = [double.remote(1)]
    assert list(as_completed(refs, yield_obj_refs=True)) == refs
    with pytest.raises(ValueError, match="chunk_size"):
        list(as_completed(refs, chunk_size=0))
    with pytest.raises(ValueError, match="num_returns"):
        list(as_completed(refs, num_returns=1))


def test_map_unordered_keeps_a_bounded_number_in_flight(ray):
    assert sorted(map_unordered(double, range(20), backpressure_size=4, chunk_size=2)) == [2 * i for i in range(20)]
    endless = map_unordered(double, itertools.count(), backpressure_size=3, chunk_size=1)
    assert len([next(endless) for _ in range(6)]) == 6  # reads its items as it goes
    assert sorted(map_unordered(double, range(3), backpressure_size=None)) == [0, 2, 4]
    with pytest.raises(ValueError, match="backpressure_size"):
        list(map_unordered(double, range(3), backpressure_size=0))


def test_a_registered_serializer_carries_an_unpicklable_class(ray):
    with pytest.raises(TypeError, match="lock"):
        value_of.remote(Locked(1))
    register_serializer(Locked, serializer=lambda obj: obj.value, deserializer=Locked)
    try:
        assert ray.get(value_of.remote(Locked(7)), timeout=60) == (7, "lock")
        assert ray.get(ray.put(Locked(8)), timeout=60).value == 8
    finally:
        deregister_serializer(Locked)
    with pytest.raises(TypeError, match="lock"):
        value_of.remote(Locked(1))
    with pytest.raises(ValueError, match="no serializer"):
        deregister_serializer(Locked)


def test_inspect_serializability_names_the_culprit():
    lock = threading.Lock()

    def uses_lock():
        return lock

    out = io.StringIO()
    ok, failures = inspect_serializability(uses_lock, name="uses_lock", print_file=out)
    assert not ok and {f.name for f in failures} == {"lock"}
    (failure,) = failures
    assert failure.obj is lock and failure.parent is uses_lock
    assert "FAIL serialization" in out.getvalue()
    assert inspect_serializability(Locked(1).value, print_file=io.StringIO()) == (True, set())
    ok, failures = inspect_serializability(Locked(2), print_file=io.StringIO())
    assert not ok and {f.name for f in failures} == {"lock"}
