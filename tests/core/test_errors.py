"""What a user sees when something goes wrong or takes long: task errors with where they
happened and the chain of tasks above them, why a worker died (exit code or signal, its
last stderr lines), unschedulable tasks failing at once, a hung ``tray.get`` saying what
it waits on, and the progress bar of a long get."""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

import tray
from tray._config import Settings, resolve
from tray.core import _process, _watch
from tray.exceptions import ActorDiedError, TaskUnschedulableError, WorkerCrashedError

WARN_AFTER_S = 0.3


@pytest.fixture(scope="module")
def node():
    tray.init(num_cpus=2, _system_config={"get_warn_after_s": WARN_AFTER_S})
    yield tray.get_runtime_context().get_node_id()
    tray.shutdown()


def _wait_for_file(path: Path) -> None:
    """In a task: block until the test creates ``path``."""
    while not path.exists():
        time.sleep(0.01)


@tray.remote
def fails(x):
    raise ValueError(f"bad {x}")


@tray.remote
def parent(x):
    return tray.get(fails.remote(x))


@tray.remote
def grandparent(x):
    return tray.get(parent.remote(x))


def test_a_task_error_names_the_task_its_pid_and_node(node):
    with pytest.raises(ValueError, match="bad 1") as info:
        tray.get(fails.remote(1))
    text = str(info.value)
    assert "task fails (pid=" in text and f"node={node})" in text
    assert "in fails" in text and text.endswith("ValueError: bad 1")
    assert "_worker.py" not in text  # the runner's own frames are left out


def test_a_failure_inside_get_shows_the_chain_of_tasks(node):
    with pytest.raises(ValueError, match="bad 2") as info:
        tray.get(grandparent.remote(2))
    err = info.value
    assert [where.split(" (")[0] for where, _tb in err.chain] == ["task grandparent", "task parent", "task fails"]
    text = str(err)
    first = text.splitlines()[2]
    assert first.startswith("task grandparent (pid=") and " -> task parent (pid=" in first
    assert " -> task fails (pid=" in first and first.endswith("raised it; remote tracebacks, outermost first:")
    for name in ("grandparent", "parent", "fails"):
        assert f"in {name}" in text
    assert text.count("ValueError: bad 2") == 2  # the summary and the innermost traceback, not once per hop
    assert "_api.py" not in text  # tray.get's own frames are left out of the hops


@tray.remote
class Shaky:
    def boom(self):
        raise KeyError("k")

    def die(self, lines: int, how: str):
        for i in range(lines):
            print(f"line {i}", file=sys.stderr, flush=True)
        if how == "signal":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(7)


def test_an_actor_method_error_names_the_actor(node):
    a = Shaky.remote()
    with pytest.raises(KeyError) as info:
        tray.get(a.boom.remote())
    assert "Shaky.boom (pid=" in str(info.value) and f"node={node})" in str(info.value)


@tray.remote(max_retries=0)
def crash(lines: int):
    for i in range(lines):
        print(f"line {i}", file=sys.stderr, flush=True)
    os._exit(3)


def test_a_dead_workers_error_says_how_it_died_and_shows_its_stderr_tail(node):
    with pytest.raises(WorkerCrashedError) as info:
        tray.get(crash.remote(15))
    text = str(info.value)
    assert "retried 0 time(s) (max_retries=0)" in text
    assert "exited with code 3" in text and f"on node {node}" in text
    tail = text.split("the last lines of its stderr:\n", 1)[1].splitlines()
    assert len(tail) == 10 and tail[0].endswith("line 5") and tail[-1].endswith("line 14")
    assert all("(crash pid=" in line for line in tail)


def test_a_dead_actor_process_error_says_why_to_its_creator(node):
    a = Shaky.remote()
    with pytest.raises(ActorDiedError) as info:
        tray.get(a.die.remote(2, "signal"))
    text = str(info.value)
    assert "while handling die: " in text and "was killed by SIGKILL" in text
    assert text.rstrip().endswith("line 1") and "line 0" in text


@tray.remote
def call_die(handle):
    try:
        tray.get(handle.die.remote(1, "exit"))
    except ActorDiedError as exc:
        return str(exc)
    return "no error"


def test_a_dead_actor_process_error_says_why_to_other_callers(node):
    text = tray.get(call_die.remote(Shaky.remote()))
    assert "exited with code 7" in text and "line 0" in text


@pytest.mark.parametrize("options, missing", [({"num_gpus": 1}, "GPU"), ({"resources": {"nope": 2}}, "nope")])
def test_an_unschedulable_task_fails_within_a_second(node, options, missing):
    start = time.monotonic()
    with pytest.raises(TaskUnschedulableError, match=missing):
        tray.get(fails.options(**options).remote(0), timeout=10)
    assert time.monotonic() - start < 1.0


class _Record(logging.Handler):
    """Keeps the ``tray`` logger's records; ``seen`` is set by the first warning."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.seen.set()


@tray.remote
def blocked(started: Path, release: Path) -> int:
    started.touch()
    _wait_for_file(release)
    return 1


@tray.remote
def consumer(x: int) -> int:
    return x + 1


@tray.remote(num_cpus=2)
def wide() -> int:
    return 2


@tray.remote
class Gate:
    def hold(self, started: Path, release: Path) -> int:
        started.touch()
        _wait_for_file(release)
        return 3


def _release_when(event: threading.Event, path: Path) -> threading.Thread:
    def run() -> None:
        event.wait(30)
        path.touch()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_hung_get_warns_once_what_it_waits_on(node, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    running = blocked.remote(started, release)
    gate = Gate.remote()
    holding = gate.hold.remote(tmp_path / "holding", release)
    _wait_for_file(started)  # it runs, holding one of the two CPUs
    _wait_for_file(tmp_path / "holding")
    refs = [running, consumer.remote(running), wide.remote(), holding, gate.hold.remote(tmp_path / "next", release)]
    handler = _Record()
    logger = logging.getLogger("tray")
    logger.addHandler(handler)
    try:
        thread = _release_when(handler.seen, release)
        assert tray.get(refs, timeout=30) == [1, 2, 2, 3, 3]
        thread.join()
    finally:
        logger.removeHandler(handler)
    [message] = handler.messages  # once per get
    assert re.match(r"tray.get has waited \d+\.\d s for 5 object\(s\):\n", message)
    lines = message.splitlines()[1:]
    assert f"ObjectRef({running.hex()}) task blocked: running on node {node} (pid " in lines[0]
    assert f"task consumer: waiting for its arguments (1 not ready: {running.hex()} of task blocked)" in lines[1]
    assert "task wide: waiting for a worker with {'CPU': 2.0}" in lines[2] and "{'CPU': 1.0}" in lines[2]
    assert re.search(r"actor call hold: running on node \w+ \(pid (\d+)\) for", lines[3])
    pid = re.search(r"\(pid (\d+)\)", lines[3]).group(1)
    assert f"actor call hold: sent to its actor on node {node} (pid {pid}), queued; it runs Gate.hold (for " in lines[4]


@tray.remote
def _warn_after_in_worker() -> float:
    return _process.current().settings.get_warn_after_s


def test_the_warning_threshold_is_read_once_into_the_runtime_and_its_workers(node, monkeypatch):
    assert _process.current().settings.get_warn_after_s == WARN_AFTER_S  # the module's tray.init set it
    assert tray.get(_warn_after_in_worker.remote()) == WARN_AFTER_S  # passed down to the workers
    monkeypatch.setenv("TRAY_GET_WARN_AFTER_S", "7.5")  # read once: a later change is not seen
    assert _process.current().settings.get_warn_after_s == WARN_AFTER_S
    for bad in (0, -1, "3", True):
        with pytest.raises(ValueError, match="get_warn_after_s"):
            resolve({"get_warn_after_s": bad})
    assert resolve(None).get_warn_after_s == 7.5
    monkeypatch.delenv("TRAY_GET_WARN_AFTER_S")
    assert resolve({}).get_warn_after_s == Settings().get_warn_after_s


def test_the_progress_bar_is_off_unless_asked_or_on_a_terminal(monkeypatch):
    monkeypatch.delenv("TRAY_PROGRESS_BAR", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not _watch._progress_wanted(1000)  # not a terminal
    monkeypatch.setenv("TRAY_PROGRESS_BAR", "1")
    assert _watch._progress_wanted(100) and not _watch._progress_wanted(99)
    monkeypatch.setenv("TRAY_PROGRESS_BAR", "0")
    assert not _watch._progress_wanted(1000)


class _Stderr(io.StringIO):
    """A stderr that sets ``drawn`` once the progress bar shows up."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = threading.Event()

    def write(self, text: str) -> int:
        if "tray.get: " in text:
            self.drawn.set()
        return super().write(text)


@tray.remote
def quick(i: int) -> int:
    return i


def test_a_long_get_over_many_refs_shows_progress(node, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAY_PROGRESS_BAR", "1")
    stderr = _Stderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    release = tmp_path / "release"
    refs = [quick.remote(i) for i in range(99)] + [blocked.remote(tmp_path / "started", release)]
    thread = _release_when(stderr.drawn, release)
    assert tray.get(refs, timeout=30) == list(range(99)) + [1]
    thread.join()
    draws = stderr.getvalue().split("\r")[1:]
    assert len(draws) >= 2 and all(d.startswith("tray.get: ") for d in draws)
    assert re.match(r"tray.get: \d+/100 done \[[#.]{30}\] \d+\.\d s", draws[0])
    assert draws[-1].startswith("tray.get: 100/100 done [" + "#" * 30 + "]") and draws[-1].endswith(" s\n")
