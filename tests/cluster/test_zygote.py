"""The zygote: a node's default workers are forked from one pre-imported interpreter.

What must hold whichever way a worker starts: it runs tasks and actors as a spawned one
does, its death (exit code or signal) reaches its callers, a runtime_env worker is still
its own interpreter, and nothing outlives the node — not the zygote, not its workers, not
even when the driver is killed outright. A node whose zygote died starts its workers by
spawning them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import tray
from tray.cluster._zygote import available
from tray.exceptions import ActorDiedError, WorkerCrashedError

pytestmark = pytest.mark.skipif(not available(), reason="the zygote needs Linux pidfds")

ZYGOTE_MARKS = ("tray::zygote", "tray.core._worker --zygote")  # its title, or its command line until it sets one


def zygotes_of(pid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(pid).children():
        try:
            if any(mark in " ".join(p.cmdline()) for mark in ZYGOTE_MARKS):
                found.append(p)
        except psutil.Error:
            pass
    return found


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def ray():
    tray.init(num_cpus=2)
    yield tray
    tray.shutdown()


@tray.remote
def parent_and_env(name: str) -> tuple[int, str | None]:
    return os.getppid(), os.environ.get(name)


@tray.remote
def exit_with(code: int) -> None:
    os._exit(code)


@tray.remote(max_restarts=0)
class Pid:
    def pid(self) -> int:
        return os.getpid()

    def parent(self) -> int:
        return os.getppid()


def test_default_workers_are_forked_by_the_zygote(ray):
    [zygote] = zygotes_of(os.getpid())
    parents = {ray.get(parent_and_env.remote("X"))[0] for _ in range(4)}
    assert parents == {zygote.pid}
    actor = Pid.remote()
    assert ray.get(actor.parent.remote(), timeout=60) == zygote.pid


def test_a_runtime_env_worker_is_its_own_interpreter(ray):
    [zygote] = zygotes_of(os.getpid())
    parent, value = ray.get(parent_and_env.options(runtime_env={"env_vars": {"X": "set"}}).remote("X"), timeout=120)
    assert value == "set"
    assert parent == os.getpid() != zygote.pid


def test_a_forked_workers_exit_code_reaches_its_caller(ray):
    with pytest.raises(WorkerCrashedError, match="exited with code 3"):
        ray.get(exit_with.options(max_retries=0).remote(3), timeout=60)


def test_a_forked_workers_signal_reaches_its_caller(ray):
    actor = Pid.remote()
    pid = ray.get(actor.pid.remote(), timeout=60)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDiedError, match="SIGKILL"):
        ray.get(actor.pid.remote(), timeout=60)


def test_workers_outlive_a_dead_zygote_and_new_ones_are_spawned(ray):
    actor = Pid.remote()
    pid = ray.get(actor.pid.remote(), timeout=60)
    [zygote] = zygotes_of(os.getpid())
    zygote.kill()
    zygote.wait(timeout=30)
    assert ray.get(actor.pid.remote(), timeout=60) == pid  # the forked worker goes on
    fresh = [Pid.remote() for _ in range(2)]  # one may get the other prestarted (forked) worker
    parents = ray.get([a.parent.remote() for a in fresh], timeout=120)
    assert os.getpid() in parents  # a new worker is spawned: there is no zygote any more
    os.kill(pid, signal.SIGKILL)  # the orphan's end is still seen (through its pidfd)
    with pytest.raises(ActorDiedError, match="after the zygote"):
        ray.get(actor.pid.remote(), timeout=60)


DRIVER = """
import os, sys, time
import tray

@tray.remote(max_restarts=0)
class Pid:
    def pid(self):
        return os.getpid()

tray.init(num_cpus=1)
a = Pid.remote()
print(tray.get(a.pid.remote()), flush=True)
time.sleep(120)
"""


def test_the_zygote_and_its_workers_die_with_a_killed_driver(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the session a killed driver leaves goes with tmp_path
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        worker = int(driver.stdout.readline())
        [zygote] = zygotes_of(driver.pid)
        assert psutil.Process(worker).ppid() == zygote.pid
    finally:
        driver.kill()
        driver.wait()
    assert wait_for(lambda: not _alive(zygote.pid) and not _alive(worker))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


THREADED_SITE = "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
PARENT_OF_A_TASK = """
import os, tray

@tray.remote
def parent():
    return os.getppid()

tray.init(num_cpus=1)
print(tray.get(parent.remote(), timeout=120) == os.getpid(), flush=True)
tray.shutdown()
"""


def test_a_zygote_that_cannot_fork_leaves_its_node_spawning_workers(tmp_path):
    """A thread started in every interpreter (a sitecustomize's) would make forks unsafe: the
    zygote refuses, and the workers it was asked for start as interpreters of their own."""
    (tmp_path / "sitecustomize.py").write_text(THREADED_SITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(tmp_path)}
    script = tmp_path / "driver.py"
    script.write_text(PARENT_OF_A_TASK)
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "True"  # the task's worker is the driver's child: spawned
    assert "the zygote cannot fork workers" in r.stderr


def test_a_node_shut_down_while_its_workers_start_leaves_nothing_behind():
    """Shut down at once: the zygote may still be importing, its workers not forked or not
    registered yet (such a worker is terminated at once, not waited for); the session's
    leak check fails the test if any process or socket stays."""
    for _ in range(3):
        tray.init(num_cpus=2)
        tray.shutdown()
