"""Refs that outlive the task that made them (Ray's borrowing): a task or actor method may
return an ObjectRef it created and the caller gets it later; when that owner really dies,
``get`` raises OwnerDiedError (also in a task that was handed the ref)."""

import gc
import os
import signal
import time

import numpy as np
import pytest

import tray
from tray.exceptions import OwnerDiedError


@tray.remote
def inner(x):
    return x * 2


@tray.remote
def returns_task_ref(x):
    return inner.remote(x)


@tray.remote
def returns_put_refs():
    return [tray.put(5), tray.put(np.arange(100_000))], os.getpid()


@tray.remote
def read_first(refs):
    try:
        return tray.get(refs[0], timeout=60)
    except OwnerDiedError as exc:
        return exc


@tray.remote
class Maker:
    def make(self):
        return {"ref": inner.remote(21)}


def test_task_returns_a_ref_to_its_child_task(ray):
    ref = tray.get(returns_task_ref.remote(4), timeout=60)
    gc.collect()
    time.sleep(0.5)  # the task and its own refs are long gone
    assert tray.get(ref, timeout=60) == 8


def test_task_returns_put_refs_small_and_large(ray):
    refs, _pid = tray.get(returns_put_refs.remote(), timeout=60)
    time.sleep(0.5)
    assert tray.get(refs[0], timeout=60) == 5
    assert int(tray.get(refs[1], timeout=60).sum()) == sum(range(100_000))


def test_actor_returns_a_ref_in_a_structure(ray):
    m = Maker.remote()
    out = tray.get(m.make.remote(), timeout=60)
    time.sleep(0.2)
    assert tray.get(out["ref"], timeout=60) == 42


def test_owner_died_is_owner_died_error(ray):
    refs, pid = tray.get(returns_put_refs.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    with pytest.raises(OwnerDiedError):
        tray.get(refs[0], timeout=60)
    refs, pid = tray.get(returns_put_refs.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    # a task given the ref learns it the same way (not a transport error)
    assert isinstance(tray.get(read_first.remote(refs), timeout=60), OwnerDiedError)
