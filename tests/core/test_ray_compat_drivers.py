"""A second driver joins the node a ``tray.init()`` program hosts, as Ray's
``ray.init(address="auto")`` joins a local ``ray.init()`` instance: the two share named
actors in a namespace, and when the first program exits the second gets errors, not a hang.

Both drivers are real processes (scripts run with the venv's python) talking over real
sockets. Their session files live in a temp dir of this test's own (``TMPDIR``), so
``"auto"`` finds this test's first driver and not another tray program on the machine.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator

import pytest

FIRST = textwrap.dedent("""
    import sys, tray
    ctx = tray.init(num_cpus=1, namespace="shared", include_dashboard=False)

    @tray.remote
    class Greeter:
        def __init__(self, who): self.who = who
        def hello(self): return f"hello from {self.who}"

    a = Greeter.options(name="first-actor").remote("first")
    tray.get(a.hello.remote())
    print("ADDRESS", ctx["address"], flush=True)
    sys.stdin.readline()  # the second driver's actor exists now
    print("SAW", tray.get(tray.get_actor("second-actor").hello.remote(), timeout=60), flush=True)
    sys.stdin.readline()  # then exit: the node this process hosts goes with it
""")

SECOND = textwrap.dedent("""
    import sys, tray
    from tray.exceptions import RayError
    ctx = tray.init(address=sys.argv[1], namespace="shared")

    @tray.remote
    def plus_one(x): return x + 1

    @tray.remote
    class Greeter:
        def __init__(self, who): self.who = who
        def hello(self): return f"hello from {self.who}"

    first = tray.get_actor("first-actor")
    print("GOT", tray.get(first.hello.remote(), timeout=60), flush=True)
    print("TASK", tray.get(plus_one.remote(1), timeout=60), flush=True)
    b = Greeter.options(name="second-actor").remote("second")
    tray.get(b.hello.remote(), timeout=60)
    print("READY", flush=True)
    sys.stdin.readline()  # the first driver has exited
    for what, call in (("actor", lambda: tray.get(first.hello.remote(), timeout=60)),
                       ("task", lambda: tray.get(plus_one.remote(1), timeout=60)),
                       ("get_actor", lambda: tray.get_actor("first-actor"))):
        try:
            call()
            print("NOERROR", what, flush=True)
        except RayError as exc:
            print("ERROR", what, type(exc).__name__, flush=True)
    tray.shutdown()
    print("DONE", flush=True)
""")


@pytest.fixture
def session_tmp() -> Iterator[dict[str, str]]:
    """An environment whose temp dir is ours alone (a short path: it holds unix sockets)."""
    tmp = tempfile.mkdtemp(prefix="tray-test-drivers-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("TRAY_ADDRESS", "TRAY_CLUSTER_TOKEN")}
    env["TMPDIR"] = tmp
    yield env
    left = [n for n in os.listdir(tmp) if n.startswith("tray-session-")]
    shutil.rmtree(tmp, ignore_errors=True)
    assert not left, f"session directories left behind: {left}"


class Script:
    """A python script in a child process, fed lines on stdin, read line by line."""

    def __init__(self, source: str, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", source, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 120.0) -> str:
        """The next line starting with ``prefix`` (what it prints before is kept for the message)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line within {timeout} s; output: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the script ended before printing {prefix!r}; output: {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def send(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 120.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.parametrize("how", ["auto", "printed"])
def test_second_driver_joins_a_tray_init_node(session_tmp: dict[str, str], how: str) -> None:
    first = Script(FIRST, env=session_tmp)
    second = None
    try:
        address = first.expect("ADDRESS")
        second = Script(SECOND, "auto" if how == "auto" else address, env=session_tmp)
        assert second.expect("GOT") == "hello from first"  # the first driver's named actor, found by name
        assert second.expect("TASK") == "2"  # a task of the second driver runs on the first's node
        second.expect("READY")
        first.send()
        assert first.expect("SAW") == "hello from second"  # and the other way round
        first.send()
        assert first.finish() == 0
        second.send()
        errors = [second.expect("ERROR").split() for _ in range(3)]  # each a RayError at once, not a hang
        assert [e[0] for e in errors] == ["actor", "task", "get_actor"], second.seen
        assert errors[1][1] == errors[2][1] == "NodeDiedError", second.seen  # the head is gone, and said so
        second.expect("DONE")
        assert second.finish() == 0
    finally:
        for s in (first, second):
            if s is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()


def test_auto_without_a_cluster_names_the_problem(session_tmp: dict[str, str]) -> None:
    run = subprocess.run([sys.executable, "-c", "import tray; tray.init(address='auto')"], env=session_tmp,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "ConnectionError" in run.stderr and "no running tray cluster" in run.stderr
