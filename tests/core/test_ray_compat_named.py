"""Named actors as Ray's docs show them: a taken name raises ``ActorAlreadyExistsError`` (a
ValueError), ``tray.util.list_named_actors`` lists the live ones (this namespace's names, or
every namespace's name/namespace pairs), ``tray.kill`` of something else is a ValueError,
and ``tray.nodes()`` rows carry Ray's ``alive``/``NodeName`` keys too."""

import pytest

import tray
from tray.exceptions import ActorAlreadyExistsError


@tray.remote
class Named:
    def ping(self):
        return "pong"


def test_a_taken_name_raises_ray_error(ray):
    a = Named.options(name="taken-name").remote()
    with pytest.raises(ActorAlreadyExistsError, match="taken-name") as info:
        Named.options(name="taken-name").remote()
    assert isinstance(info.value, ValueError)
    assert tray.get(Named.options(name="taken-name", get_if_exists=True).remote().ping.remote(), timeout=60) == "pong"
    tray.kill(a)


def test_list_named_actors(ray):
    here = tray.get_runtime_context().namespace
    a = Named.options(name="listed-a").remote()
    b = Named.options(name="listed-b", namespace="elsewhere").remote()
    tray.get([a.ping.remote(), b.ping.remote()], timeout=60)
    names = tray.util.list_named_actors()
    assert "listed-a" in names and "listed-b" not in names
    every = tray.util.list_named_actors(all_namespaces=True)
    assert {"name": "listed-a", "namespace": here} in every
    assert {"name": "listed-b", "namespace": "elsewhere"} in every
    tray.kill(a)
    tray.kill(b)
    for _ in range(200):  # the kill is told, not waited for
        if "listed-a" not in tray.util.list_named_actors():
            break
        __import__("time").sleep(0.05)
    assert "listed-a" not in tray.util.list_named_actors()
    with pytest.raises(TypeError, match="all_namespaces"):
        tray.util.list_named_actors(all_namespaces="yes")


def test_kill_of_something_else_is_a_value_error(ray):
    with pytest.raises(ValueError, match="only supports actors"):
        tray.kill("not an actor")


def test_nodes_have_rays_aliases(ray):
    (row,) = tray.nodes()
    assert row["alive"] is row["Alive"] is True and row["NodeName"] == row["NodeManagerAddress"]


def test_get_actor_checks_the_name(ray):
    with pytest.raises(TypeError, match="str"):
        tray.get_actor(1)
    with pytest.raises(ValueError, match="non-empty"):
        tray.get_actor("")
