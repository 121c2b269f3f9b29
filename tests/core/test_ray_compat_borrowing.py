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


@tray.remote
class ChildMaker:
    def make_list(self):
        ref = inner.remote(5)
        out = [ref]
        del ref  # the method's own copy goes; the list's copy travels to the caller
        return out

    def make_dict_of_put(self):
        return {"a": [tray.put("v")]}


@tray.remote
def returns_nested(x):
    return {"refs": [inner.remote(x)], "tag": "n"}


@tray.remote
def two_hops(x):
    """Gets a structure holding a ref made by another task, and returns it on (task -> task -> driver)."""
    out = tray.get(returns_nested.remote(x), timeout=60)
    return [out["refs"][0]]


def test_actor_method_returns_a_list_with_its_childs_ref(ray):
    m = ChildMaker.remote()
    out = tray.get(m.make_list.remote(), timeout=60)
    gc.collect()
    time.sleep(0.5)  # the method's frame and its refs are long gone
    assert tray.get(out[0], timeout=60) == 10
    nested = tray.get(m.make_dict_of_put.remote(), timeout=60)
    time.sleep(0.3)
    assert tray.get(nested["a"][0], timeout=60) == "v"


def test_task_returns_a_ref_nested_in_a_dict(ray):
    out = tray.get(returns_nested.remote(7), timeout=60)
    gc.collect()
    time.sleep(0.5)
    assert out["tag"] == "n"
    assert tray.get(out["refs"][0], timeout=60) == 14


def test_a_ref_returned_through_two_hops(ray):
    out = tray.get(two_hops.remote(8), timeout=60)
    gc.collect()
    time.sleep(0.5)
    assert tray.get(out[0], timeout=60) == 16
    del out
    out = tray.get([two_hops.remote(i) for i in range(4)], timeout=60)
    time.sleep(0.3)
    assert tray.get([o[0] for o in out], timeout=60) == [0, 2, 4, 6]


def test_a_killed_actor_owner_is_owner_died_error(ray):
    m = ChildMaker.remote()
    nested = tray.get(m.make_dict_of_put.remote(), timeout=60)
    tray.kill(m)
    time.sleep(1)
    with pytest.raises(OwnerDiedError):
        tray.get(nested["a"][0], timeout=60)
    with pytest.raises(OwnerDiedError):  # the same again: the error is kept, not a transport error
        tray.get(nested["a"], timeout=60)


@tray.remote
class AsyncReader:
    async def read(self, refs):
        try:
            return await refs[0]
        except OwnerDiedError as exc:
            return exc


def test_owner_died_reaches_every_way_of_waiting(ray):
    reader = AsyncReader.remote()
    refs, pid = tray.get(returns_put_refs.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    assert isinstance(tray.get(reader.read.remote(refs), timeout=60), OwnerDiedError)  # `await ref` in an actor
    assert tray.wait(refs[:1], timeout=30)[0] == refs[:1]  # a failed ref counts as ready
    with pytest.raises(OwnerDiedError):
        refs[0].future().result(timeout=60)
    tray.kill(reader)


@tray.remote
def echo(x):
    return x


@tray.remote
class Echo:
    def echo(self, x):
        return x


def test_our_ref_comes_home_inside_a_result(ray):
    """A ref we own, sent nested to a task and returned inside its result, lives while that
    result does, though we dropped our own copy (Ray's nested refs)."""
    for call in (echo.remote, Echo.remote().echo.remote):
        ref = tray.put("home")
        out = call([ref])
        del ref
        gc.collect()
        time.sleep(0.5)
        inner = tray.get(out, timeout=60)[0]
        assert tray.get(inner, timeout=60) == "home"


def test_a_freed_ref_back_from_outside_tray_fails_instead_of_hanging(ray):
    import cloudpickle

    from tray.exceptions import ObjectLostError

    ref = tray.put("gone")
    blob = cloudpickle.dumps(ref)  # a copy tray cannot count
    del ref
    gc.collect()
    time.sleep(0.5)  # freed
    with pytest.raises(ObjectLostError, match="freed"):
        tray.get(cloudpickle.loads(blob), timeout=60)
