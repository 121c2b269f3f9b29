"""``get_runtime_context()`` as Ray documents it: getters give hex strings, properties ID
objects (``.hex()``/``.binary()``, equal to the old strings); the running task's name and
function name, the actor's name, handle and restart state, the assigned resources, and the
placement group an actor runs in."""

import os
import time

import pytest

import tray
from tray.util.placement_group import get_current_placement_group, placement_group, remove_placement_group
from tray.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@tray.remote(num_cpus=0.5)
def where():
    c = tray.get_runtime_context()
    return {"name": c.get_task_name(), "fn": c.get_task_function_name(), "res": c.get_assigned_resources(),
            "task_id": c.get_task_id(), "task": c.task_id, "gpus": tray.get_gpu_ids(),
            "accel": c.get_accelerator_ids(), "get": c.get()}


@tray.remote(max_restarts=1)
class Who:
    def info(self):
        c = tray.get_runtime_context()
        pg = get_current_placement_group()
        return {"name": c.get_task_name(), "fn": c.get_task_function_name(), "actor": c.get_actor_name(),
                "again": c.was_current_actor_reconstructed, "res": c.get_assigned_resources(),
                "pg": pg.id.hex() if pg is not None else None, "id": c.get_actor_id(), "pid": os.getpid()}

    def me(self):
        return tray.get_runtime_context().current_actor

    def echo(self, x):
        return x


def test_task_context(ray):
    info = tray.get(where.remote(), timeout=60)
    assert info["name"] == "where" and info["fn"].endswith(".where")
    assert info["res"] == {"CPU": 0.5}
    assert info["task"] == info["task_id"] and info["task"].hex() == info["task_id"]
    assert info["gpus"] == [] and info["accel"] == {"GPU": []}
    assert set(info["get"]) >= {"job_id", "node_id", "namespace", "task_id"}
    assert tray.get(where.options(name="custom").remote(), timeout=60)["name"] == "custom"


def test_driver_context_ids(ray):
    c = tray.get_runtime_context()
    assert c.job_id.hex() == c.get_job_id() and c.job_id == c.get_job_id()
    assert c.node_id == tray.NodeID(c.get_node_id()) and isinstance(c.node_id.binary(), bytes)
    assert str(c.node_id) == c.get_node_id()
    assert c.get_task_name() is None and c.get_assigned_resources() == {}
    with pytest.raises(RuntimeError):
        c.current_actor  # noqa: B018
    assert tray.get_gpu_ids() == []


def test_actor_context(ray):
    a = Who.options(name="who").remote()
    info = tray.get(a.info.remote(), timeout=60)
    assert info["name"] == "Who.info" and info["fn"].endswith(".Who.info")
    assert info["actor"] == "who" and info["again"] is False and info["pg"] is None
    me = tray.get(a.me.remote(), timeout=60)
    assert tray.get(me.echo.remote(3), timeout=60) == 3  # the handle works
    tray.kill(a, no_restart=False)
    deadline = time.monotonic() + 60
    while True:  # a call may still reach the old process before the kill does
        now = tray.get(a.info.options(max_task_retries=-1).remote(), timeout=60)
        if now["pid"] != info["pid"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert now["pid"] != info["pid"] and now["again"] is True
    tray.kill(a)


def test_actor_sees_its_placement_group(ray):
    pg = placement_group([{"CPU": 1}])
    tray.get(pg.ready(), timeout=60)
    a = Who.options(num_cpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    info = tray.get(a.info.remote(), timeout=60)
    assert info["pg"] == pg.id.hex() and info["res"] == {"CPU": 1.0}
    tray.kill(a)
    remove_placement_group(pg)
