"""``tray list`` and ``tray summary`` from a shell: against a running ``tray.init()`` program
(this test process) and against a two-node cluster, each asked at its address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import tray
from tray._cli import main
from tray._cli.state import parse_filter, table
from tray.cluster_utils import Cluster
from tray.core._runtime import current


@tray.remote
def square(x: int) -> int:
    return x * x


@tray.remote
def boom() -> None:
    raise ValueError("boom")


@tray.remote
class Counter:
    def incr(self) -> int:
        return 1


def tray_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tray", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_filters_parse_and_tables_align() -> None:
    assert parse_filter("state=FAILED") == ("state", "=", "FAILED")
    assert parse_filter("name!=f") == ("name", "!=", "f")
    assert parse_filter("error_message=a=b") == ("error_message", "=", "a=b")
    for bad in ("state", "=x", "!=x"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_filter(bad)
    text = table(["A", "LONGER"], [["x" * 100, None], [1, {"k": [1, 2]}]])
    lines = text.splitlines()
    assert lines[0] == "A" + " " * 61 + "LONGER" and lines[1] == "x" * 57 + "..."  # cut, and None is blank
    assert lines[2] == "1" + " " * 61 + '{"k": [1, 2]}'


@pytest.fixture(scope="module")
def driver() -> Iterator[str]:
    """This process as a local ``tray.init()`` driver with some history; its node's address."""
    tray.init(num_cpus=2)
    tray.get([square.remote(i) for i in range(3)])
    with pytest.raises(ValueError):
        tray.get(boom.remote())
    counter = Counter.remote()
    tray.get(counter.incr.remote())
    with open(os.path.join(current().session_dir, "session.json")) as f:  # type: ignore[arg-type]
        address = json.load(f)["address"]
    yield address
    tray.shutdown()


def test_list_tasks_as_a_table_and_as_json(driver: str) -> None:
    r = tray_cli("list", "tasks", "--address", driver)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("======== List tasks:") and lines[1] == "Total: 6"
    header = lines[3].split()
    assert header[:4] == ["TASK_ID", "ATTEMPT_NUMBER", "NAME", "STATE"]
    body = [line.split() for line in lines[4:]]
    assert sorted(row[2] for row in body) == ["Counter.__init__", "Counter.incr", "boom", "square", "square", "square"]
    column = lines[3].index("STATE")  # every row's state starts under its header
    assert {line[column:].split()[0] for line in lines[4:]} == {"FINISHED", "FAILED"}
    r = tray_cli("list", "tasks", "--address", driver, "--format", "json", "--filter", "state=FAILED", "--detail")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["name"] == "boom" and row["error_type"] == "TASK_EXECUTION_EXCEPTION" and "boom" in row["error_message"]
    r = tray_cli("list", "tasks", "--address", driver, "--limit", "2", "--filter", "name!=boom")
    assert r.returncode == 0 and "Total: 5 (the first 2: raise --limit for more)" in r.stdout
    assert len(r.stdout.strip().splitlines()) == 4 + 2


def test_list_other_resources_and_summaries(driver: str, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> str:  # in this process, to spare an interpreter's start per command
        assert main([*args, "--address", driver]) == 0
        return capsys.readouterr().out

    for resource in ("actors", "objects", "nodes", "workers", "jobs", "placement-groups"):
        assert isinstance(json.loads(run("list", resource, "--format", "json")), list)
    drivers = json.loads(run("list", "workers", "--filter", "worker_type=DRIVER", "--format", "json"))
    assert [w["pid"] for w in drivers] == [os.getpid()]
    text = run("summary", "tasks")
    assert "Total: 4 task(s), 1 actor call(s), 1 actor creation(s)" in text
    assert any(line.split()[:3] == ["square", "NORMAL_TASK", "FINISHED:"] for line in text.splitlines())
    assert json.loads(run("summary", "actors", "--format", "json"))["cluster"]["summary"]["Counter"][
        "state_counts"] == {"ALIVE": 1}
    text = run("summary", "objects")
    assert "Total objects:" in text and "NODE_ID" in text


def test_a_bad_filter_key_is_a_clear_error(driver: str) -> None:
    r = tray_cli("list", "actors", "--address", driver, "--filter", "colour=red")
    assert r.returncode == 2 and r.stdout == ""
    assert "unknown filter key 'colour'; valid keys: actor_id, class_name, state" in r.stderr


def test_no_cluster_at_the_address_is_a_clear_error(tmp_path: object) -> None:
    env = {**os.environ, "TRAY_CLUSTER_TOKEN": "x"}
    r = tray_cli("list", "nodes", "--address", "unix:///nonexistent/node.sock", env=env)
    assert r.returncode == 1 and "tray list:" in r.stderr and "Traceback" not in r.stderr


def test_list_nodes_of_a_cluster_from_a_shell() -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        node = cluster.add_node(num_cpus=1)
        env = {**os.environ, "TRAY_CLUSTER_TOKEN": cluster.token}
        r = tray_cli("list", "nodes", "--address", cluster.address, "--format", "json", env=env)
        assert r.returncode == 0, r.stderr
        rows = {n["node_id"]: n for n in json.loads(r.stdout)}
        assert rows.keys() == {cluster.head_node.node_id, node.node_id}  # type: ignore[union-attr]
        assert [n["is_head_node"] for n in rows.values()].count(True) == 1
        r = tray_cli("list", "workers", "--address", node.address, env=env)  # a node's address finds its head
        assert r.returncode == 0 and "Total:" in r.stdout, r.stderr
    finally:
        cluster.shutdown()
