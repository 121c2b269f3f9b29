"""``tray logs``: worker log files, written by every node (a driver's own too) and found by
actor, task, node or worker pid, read through each node's scheduler."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tray
from tray._cli import main


@pytest.fixture(scope="module")
def session():
    info = tray.init(num_cpus=2)
    yield info
    tray.shutdown()


def logs_dir(session) -> Path:
    return Path(session["address"][len("unix://"):]).parent / "logs"


def wait_logged(session, pid: int, text: str, timeout: float = 10.0) -> None:
    """Until the node has copied ``text`` (printed by worker ``pid``) into its log file."""
    deadline = time.monotonic() + timeout
    while not any(text in p.read_text() for p in logs_dir(session).glob(f"worker-*-{pid}.*")):
        assert time.monotonic() < deadline, f"{text!r} never reached the log files of worker {pid}"
        time.sleep(0.02)


def logs(session, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["logs", "--address", session["address"], *args])
    out, err = capsys.readouterr()
    return code, out, err


@tray.remote
def say(text: str, err: bool = False) -> int:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)
    return os.getpid()


@tray.remote
class Talker:
    def say(self, text: str) -> int:
        print(text, file=sys.stderr, flush=True)
        return os.getpid()


def test_a_local_node_writes_worker_log_files_and_still_echoes(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import glob, os, tray\n"
        "info = tray.init(num_cpus=1)\n"
        "@tray.remote\n"
        "def hello():\n"
        "    print('hello to both', flush=True)\n"
        "    return os.getpid()\n"
        "pid = tray.get(hello.remote())\n"
        "logs = os.path.join(os.path.dirname(info['address'][len('unix://'):]), 'logs')\n"
        "path = os.path.join(logs, f'worker-w1-{pid}.out')\n"
        "import time\n"
        "deadline = time.monotonic() + 10\n"
        "while 'hello to both' not in open(path).read() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "print('FILE:', open(path).read().strip())\n"
        "tray.shutdown()\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    echoed = [line for line in r.stdout.splitlines() if line.startswith("(hello pid=")]
    assert echoed and echoed[0].endswith(") hello to both")
    assert f"FILE: {echoed[0]}" in r.stdout


def test_logs_of_an_actor_by_name(session, capsys):
    t = Talker.options(name="talker").remote()
    pid = tray.get(t.say.remote("actor marker"))
    wait_logged(session, pid, "actor marker")
    code, out, err = logs(session, capsys, "--actor", "talker")
    assert code == 0, err
    assert f"(Talker pid={pid}) actor marker" in out and "task marker" not in out


def test_logs_of_a_task_by_id_and_of_a_worker_by_pid(session, capsys):
    ref = say.remote("task marker")
    pid = tray.get(ref)
    wait_logged(session, pid, "task marker")
    code, out, err = logs(session, capsys, "--task", ref.hex())
    assert code == 0, err
    assert f"(say pid={pid}) task marker" in out
    code, out, err = logs(session, capsys, "--worker", str(pid))
    assert code == 0 and f"(say pid={pid}) task marker" in out


def test_logs_of_a_node_and_the_listing(session, capsys):
    pid = tray.get(say.remote("node marker", err=True))
    wait_logged(session, pid, "node marker")
    node = tray.get_runtime_context().get_node_id()
    code, out, err = logs(session, capsys, "--node", node[:4])
    assert code == 0, err
    assert f"==> node {node}: worker-" in out and f"(say pid={pid}) node marker" in out
    code, out, err = logs(session, capsys)
    assert code == 0 and out.splitlines()[0].split() == ["NODE", "FILE", "SIZE", "WORKER"]
    assert any(f"-{pid}.err" in line and " alive" in line for line in out.splitlines())


def test_tail_keeps_the_last_lines(session, capsys):
    @tray.remote
    def count() -> int:
        for i in range(50):
            print(f"count {i}", flush=True)
        return os.getpid()

    ref = count.remote()
    pid = tray.get(ref)
    wait_logged(session, pid, "count 49")
    code, out, err = logs(session, capsys, "--task", ref.hex(), "--tail", "2")
    assert code == 0, err
    printed = out[out.index("==> node"):]  # (before it: the task's own output, echoed by the local node)
    assert printed.splitlines()[-2:] == [f"(count pid={pid}) count 48", f"(count pid={pid}) count 49"]
    assert "count 47" not in printed


def test_unknown_selectors_say_why(session, capsys):
    code, _out, err = logs(session, capsys, "--task", "nosuchtask")
    assert code == 1 and "task nosuchtask is not in any live worker's timeline" in err
    code, _out, err = logs(session, capsys, "--actor", "nobody")
    assert code == 1 and "no actor named 'nobody'" in err
    code, _out, err = logs(session, capsys, "--node", "zzzz")
    assert code == 1 and "no alive node's id starts with 'zzzz'" in err


def _lines(proc: subprocess.Popen) -> queue.Queue:
    """The process's stdout lines, as they come (read in a thread, so waits can time out)."""
    q: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            q.put(line)

    threading.Thread(target=read, daemon=True).start()
    return q


def _until(lines: queue.Queue, text: str) -> str:
    while True:
        line = lines.get(timeout=30)
        if text in line:
            return line


def test_follow_prints_new_lines_until_interrupted(session):
    t = Talker.options(name="followed").remote()
    pid = tray.get(t.say.remote("first line"))
    wait_logged(session, pid, "first line")
    proc = subprocess.Popen([sys.executable, "-m", "tray", "logs", "--actor", "followed", "--follow",
                             "--address", session["address"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = _lines(proc)
        assert _until(lines, "first line") == f"(Talker pid={pid}) first line\n"
        tray.get(t.say.remote("second line"))
        assert _until(lines, "second line") == f"(Talker pid={pid}) second line\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
