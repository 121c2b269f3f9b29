"""``tray start``, ``tray status``, ``tray stop`` and ``tray.init(address=...)``, run the way a user
would, in subprocesses. Each test gets its own temp dir (``TMPDIR``): the sessions ``tray
stop`` and ``address="auto"`` find are only this test's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    e = {**os.environ, "TMPDIR": str(tmp_path)}
    e.pop("TRAY_CLUSTER_TOKEN", None)
    e.pop("TRAY_ADDRESS", None)
    yield e
    subprocess.run([sys.executable, "-m", "tray", "stop", "--grace", "5"], env=e, capture_output=True, timeout=60)


def tray(env, *args, timeout=90, check=True):
    r = subprocess.run([sys.executable, "-m", "tray", *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"tray {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def sessions(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tray-session-"))


def test_start_status_init_and_stop(env, tmp_path):
    port = free_port()
    out = tray(env, "start", "--head", "--port", str(port), "--num-cpus", "1").stdout
    assert f"127.0.0.1:{port}" in out and "tray stop" in out
    tray(env, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2", "--resources", '{"gpu_box": 1}')
    status = tray(env, "status").stdout
    assert "2 alive, 0 dead" in status and "gpu_box" in status
    nodes = json.loads(tray(env, "status", "--format", "json").stdout)
    assert sum(n["Resources"]["CPU"] for n in nodes) == 3

    driver = tmp_path / "driver.py"
    driver.write_text(
        "import tray, time\n"
        "tray.init(address='auto')\n"
        "@tray.remote(resources={'gpu_box': 1})\n"
        "def f(x):\n"
        "    return x * 2, tray.get_runtime_context().get_node_id()\n"
        "print(tray.get(f.remote(21))[0], tray.cluster_resources()['CPU'])\n"
    )
    r = subprocess.run([sys.executable, str(driver)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["42", "3.0"]

    pids = [json.load(open(tmp_path / s / "session.json"))["pid"] for s in sessions(tmp_path)]
    assert len(pids) == 2
    children = [c for pid in pids for c in psutil.Process(pid).children(recursive=True)]
    out = tray(env, "stop").stdout
    assert out.count("stopped the") == 2
    assert not [p for p in pids + [c.pid for c in children] if psutil.pid_exists(p) and
                psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert sessions(tmp_path) == []


def test_a_node_without_the_token_cannot_join_and_a_driver_without_it_cannot_connect(env, tmp_path):
    port = free_port()
    tray(env, "start", "--head", "--port", str(port), "--num-cpus", "1")
    bad = {**env, "TRAY_CLUSTER_TOKEN": "not-the-token"}
    r = subprocess.run([sys.executable, "-c", f"import tray; tray.init(address='127.0.0.1:{port}')"], env=bad,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "token" in r.stderr
    head_log = next(tmp_path.glob("tray-session-*/logs/node.log")).read_text()
    assert "wrong cluster token" in head_log

    r = tray(bad, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", check=False, timeout=120)
    assert r.returncode != 0
    nodes = json.loads(tray(env, "status", "--format", "json").stdout)
    assert len(nodes) == 1


def test_status_and_auto_without_a_cluster_say_how_to_start_one(env):
    r = tray(env, "status", check=False)
    assert r.returncode == 1 and "tray start --head" in r.stderr
    r = subprocess.run([sys.executable, "-c", "import tray; tray.init(address='auto')"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "tray start --head" in r.stderr


def test_stop_sweeps_what_a_killed_driver_left(env, tmp_path):
    code = "import tray, os, time; tray.init(num_cpus=1); print('up', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    assert len(sessions(tmp_path)) == 1
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10  # its workers notice their parent is gone
    while any(p.info["name"].startswith("tray::") and p.info["ppid"] == proc.pid
              for p in psutil.process_iter(["name", "ppid"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = tray(env, "stop").stdout
    assert "leftover" in out
    assert sessions(tmp_path) == []


def test_block_runs_the_node_in_the_foreground_until_ctrl_c(env, tmp_path):
    import signal

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tray", "start", "--head", "--port", str(port), "--num-cpus", "1",
                             "--block"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert f"the head node is up at 127.0.0.1:{port}" in line and "Ctrl-C stops it" in line
        assert len(sessions(tmp_path)) == 1
        r = tray(env, "status")
        assert "1 alive" in r.stdout
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sessions(tmp_path) == []
