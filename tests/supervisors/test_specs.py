"""Specs are frozen and validated on construction; configs (TOML or dict) load into them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

import tray
from tray.supervisors import Backoff, ChildSpec, ConfigError, Supervisor, SupervisorSpec, load_config


class Worker(tray.Actor):
    def __init__(self, *args: object) -> None:
        self.args = args


def test_child_spec_defaults_follow_otp() -> None:
    w = ChildSpec("w", Worker)
    assert (w.restart, w.type, w.shutdown, w.significant, w.args, w.kwargs) == (
        "permanent", "worker", 5.0, False, (), {}
    )
    s = ChildSpec("s", SupervisorSpec("one_for_one"))
    assert (s.type, s.shutdown) == ("supervisor", "infinity")
    assert ChildSpec("s2", Supervisor, args=(SupervisorSpec("one_for_one"),)).type == "supervisor"
    assert ChildSpec("w", Worker, args=[1, 2]).args == (1, 2)


def test_specs_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ChildSpec("w", Worker).restart = "temporary"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        SupervisorSpec("one_for_one").intensity = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": ""}, "id"),
        ({"start": 42}, "start"),
        ({"start": "nocolon"}, "start"),
        ({"restart": "sometimes"}, "restart"),
        ({"shutdown": -1}, "shutdown"),
        ({"shutdown": "later"}, "shutdown"),
        ({"type": "manager"}, "type"),
        ({"significant": True}, "significant"),  # significant + permanent: invalid, as in OTP
        ({"decider": {ValueError: "retry"}}, "decider"),
        ({"decider": {"NoSuchError": "stop"}}, "decider"),
        ({"decider": {int: "stop"}}, "decider"),
        ({"kwargs": {"name": "x"}}, "kwargs"),
        ({"intensity": 3}, "period"),
        ({"intensity": -1, "period": 1.0}, "intensity"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"backoff": {"min": 1}}, "backoff"),
    ],
)
def test_invalid_child_spec_names_the_field_and_child(kwargs: dict, field: str) -> None:
    args = {"id": "db", "start": Worker, **kwargs}
    with pytest.raises(ConfigError) as e:
        ChildSpec(**args)
    assert e.value.field == field
    assert f"field {field!r}" in str(e.value)
    if args["id"]:
        assert e.value.child == "db" and "child 'db'" in str(e.value)


def test_transient_or_temporary_may_be_significant() -> None:
    SupervisorSpec(
        "one_for_one",
        auto_shutdown="any_significant",
        children=[ChildSpec("a", Worker, restart="transient", significant=True)],
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "child"),
    [
        ({"strategy": "one_for_some"}, "strategy", None),
        ({"intensity": -1}, "intensity", None),
        ({"intensity": 1.5}, "intensity", None),
        ({"period": 0}, "period", None),
        ({"auto_shutdown": "sometimes"}, "auto_shutdown", None),
        ({"children": [ChildSpec("a", Worker), ChildSpec("a", Worker)]}, "id", "a"),
        ({"children": ["a"]}, "children", None),
        ({"children": [ChildSpec("t", Worker, restart="temporary", significant=True)]}, "significant", "t"),
        ({"strategy": "simple_one_for_one"}, "children", None),
        ({"strategy": "simple_one_for_one", "children": [ChildSpec("w", Worker, name="w")]}, "name", "w"),
    ],
)
def test_invalid_supervisor_spec(kwargs: dict, field: str, child: str | None) -> None:
    with pytest.raises(ConfigError) as e:
        SupervisorSpec(**{"strategy": "one_for_one", **kwargs})
    assert (e.value.field, e.value.child) == (field, child)


# ------------------------------------------------------------------ configs

CONFIG = """
strategy = "one_for_one"
intensity = 3
period = 2.5

[[children]]
id = "db"
start = "{mod}:Worker"
args = [1, "two"]
name = "db"
restart = "transient"
shutdown = "brutal_kill"
backoff = {{ min = 0.1, max = 2.0, jitter = 0.2 }}
decider = {{ ValueError = "resume", "KeyError" = "escalate" }}
mailbox = {{ capacity = 8, overflow = "drop_old" }}

[[children]]
id = "pool"
[children.supervisor]
strategy = "simple_one_for_one"
[[children.supervisor.children]]
id = "worker"
start = "{mod}:Worker"
restart = "temporary"
"""


def write(tmp_path: Path, text: str, name: str = "services.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_toml_with_nested_supervisor(tmp_path: Path) -> None:
    spec = load_config(write(tmp_path, CONFIG.format(mod=__name__)))
    assert (spec.strategy, spec.intensity, spec.period) == ("one_for_one", 3, 2.5)
    db, pool = spec.children
    assert db.start == f"{__name__}:Worker" and db.actor_class() is Worker
    assert db.args == (1, "two") and db.name == "db" and db.restart == "transient"
    assert db.backoff == Backoff(0.1, 2.0, 0.2)
    assert db.mailbox == tray.MailboxSpec(8, "drop_old")
    assert db.shutdown == "brutal_kill"
    assert pool.type == "supervisor" and pool.shutdown == "infinity"
    assert isinstance(pool.start, SupervisorSpec) and pool.start.strategy == "simple_one_for_one"
    assert pool.start.children[0].restart == "temporary"


def test_load_dict_is_the_same_shape() -> None:
    spec = load_config({"strategy": "rest_for_one", "children": [{"id": "a", "start": f"{__name__}:Worker"}]})
    assert spec.strategy == "rest_for_one" and spec.children[0].actor_class() is Worker


def test_module_beside_the_config_is_importable(tmp_path: Path) -> None:
    (tmp_path / "beside_mod_xyz.py").write_text("import tray\nclass Thing(tray.Actor):\n    pass\n")
    path = write(tmp_path, 'strategy = "one_for_one"\n[[children]]\nid = "t"\nstart = "beside_mod_xyz:Thing"\n')
    spec = load_config(path)
    assert spec.children[0].actor_class().__name__ == "Thing"


@pytest.mark.parametrize(
    ("text", "child", "field"),
    [
        ('strategy = "one_for_some"\n', None, "strategy"),
        ('strategy = "one_for_one"\nfrobnicate = 1\n', None, "frobnicate"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\n', "a", "start"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "no_such_mod_q:X"\n', "a", "start"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "tray:ActorSystem"\n', "a", "start"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "x:Y"\nrestart = "never"\n', "a", "restart"),
        ('strategy = "one_for_one"\n[[children]]\nstart = "x:Y"\n', "#0", "id"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "x:Y"\nbackoff = { min = 2, max = 1 }\n',
         "a", "backoff.max"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "x:Y"\nbackoff = { minimum = 2 }\n',
         "a", "backoff"),
        ('strategy = "one_for_one"\n[[children]]\nid = "a"\nstart = "x:Y"\ncolour = "red"\n', "a", "colour"),
        ('strategy = "one_for_one"\n[[children]]\nid = "pool"\n[children.supervisor]\nstrategy = "one_for_one"\n'
         '[[children.supervisor.children]]\nid = "w"\nstart = "x:Y"\nshutdown = "soon"\n', "pool.w", "shutdown"),
        ('strategy = "one_for_one"\n[[children]]\nid = "pool"\n[children.supervisor]\nstrategy = "bogus"\n',
         "pool", "strategy"),
        ("strategy = [unclosed\n", None, "(syntax)"),
    ],
)
def test_bad_config_names_file_child_and_field(tmp_path: Path, text: str, child: str | None, field: str) -> None:
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert (e.value.source, e.value.child, e.value.field) == (str(path), child, field)
    msg = str(e.value)
    assert str(path) in msg and f"field {field!r}" in msg
    if child is not None:
        assert f"child {child!r}" in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_tray_up_with_bad_config_exits_non_zero_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, 'strategy = "one_for_one"\n[[children]]\nid = "db"\nstart = "x:Y"\nrestart = "nah"\n')
    r = subprocess.run([sys.executable, "-m", "tray", "up", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert str(path) in r.stderr and "child 'db'" in r.stderr and "field 'restart'" in r.stderr
