"""How tasks and actors end on purpose or by a BaseException (Ray's documented behaviour):
a task's ``sys.exit()`` or BaseException is a worker crash (WorkerCrashedError), a
KeyboardInterrupt a cancellation; ``tray.actor.exit_actor()``, ``sys.exit()`` or a
BaseException in an actor method ends the actor for good (ActorDiedError naming the exit);
killing an actor during its ``__init__`` gives its resources back."""

import asyncio
import sys
import time

import pytest

import tray
from tray.exceptions import ActorDiedError, RayActorError, TaskCancelledError, WorkerCrashedError


class Custom(BaseException):
    pass


@tray.remote(max_retries=0)
def ends(how):
    if how == "exit":
        sys.exit(3)
    if how == "interrupt":
        raise KeyboardInterrupt
    raise Custom("not an Exception")


@tray.remote
def one():
    return 1


@pytest.mark.parametrize("how", ["exit", "base"])
def test_task_base_exception_is_a_worker_crash(ray, how):
    with pytest.raises(WorkerCrashedError) as info:
        tray.get(ends.remote(how), timeout=60)
    assert ("sys.exit(3)" if how == "exit" else "Custom: not an Exception") in str(info.value)
    assert tray.get([one.remote() for _ in range(4)], timeout=60) == [1] * 4  # the CPUs came back


def test_task_keyboard_interrupt_is_a_cancellation(ray):
    with pytest.raises(TaskCancelledError):
        tray.get(ends.remote("interrupt"), timeout=60)
    assert tray.get(one.remote(), timeout=60) == 1


@tray.remote(max_restarts=2)
class Quitter:
    def __init__(self, on_init=False):
        if on_init:
            tray.actor.exit_actor()

    def ping(self):
        return "pong"

    def quit(self, how="exit_actor"):
        if how == "exit_actor":
            tray.actor.exit_actor()
        elif how == "sys.exit":
            sys.exit()
        raise Custom("gone")

    def slow(self):
        time.sleep(0.5)
        return "slow"


@tray.remote
class AsyncQuitter:
    async def ping(self):
        return "pong"

    async def quit(self):
        await asyncio.sleep(0)
        tray.actor.exit_actor()

    async def wait(self):
        await asyncio.sleep(30)


@pytest.mark.parametrize("how,words", [("exit_actor", "exit_actor() was called"),
                                       ("sys.exit", "sys.exit() was called"),
                                       ("base", "Custom: gone")])
def test_actor_exit_fails_its_call_and_later_ones(ray, how, words):
    a = Quitter.remote()
    assert tray.get(a.ping.remote(), timeout=60) == "pong"
    with pytest.raises(ActorDiedError, match=words.replace("(", r"\(").replace(")", r"\)")):
        tray.get(a.quit.remote(how), timeout=60)
    # not restarted, whatever max_restarts says
    with pytest.raises(RayActorError):
        tray.get(a.ping.remote(), timeout=60)


def test_exit_actor_pending_calls_fail(ray):
    a = Quitter.remote()
    tray.get(a.ping.remote(), timeout=60)
    slow = a.slow.remote()
    quit_ref = a.quit.remote()
    after = [a.ping.remote() for _ in range(3)]
    assert tray.get(slow, timeout=60) == "slow"
    for ref in [quit_ref, *after]:
        with pytest.raises(ActorDiedError) as info:
            tray.get(ref, timeout=60)
        assert "exit" in str(info.value)


def test_async_actor_exit(ray):
    a = AsyncQuitter.remote()
    assert tray.get(a.ping.remote(), timeout=60) == "pong"
    waiting = a.wait.remote()
    with pytest.raises(ActorDiedError, match="exit_actor"):
        tray.get(a.quit.remote(), timeout=60)
    with pytest.raises(ActorDiedError):
        tray.get(waiting, timeout=60)


def test_exit_actor_in_init(ray):
    a = Quitter.remote(on_init=True)
    with pytest.raises(ActorDiedError, match="exit_actor"):
        tray.get(a.ping.remote(), timeout=60)


def test_exit_actor_outside_an_actor(ray):
    with pytest.raises(TypeError, match="outside an actor"):
        tray.actor.exit_actor()


@tray.remote(num_cpus=2)
class SlowStart:
    def __init__(self):
        time.sleep(300)

    def ping(self):
        return 1


@tray.remote(num_cpus=2)
def needs_both():
    return "ran"


def test_kill_during_init_gives_resources_back(ray):
    a = SlowStart.remote()
    deadline = time.monotonic() + 60
    while tray.available_resources().get("CPU", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # its __init__ holds both CPUs
    assert tray.available_resources().get("CPU", 0) == 0
    tray.kill(a)
    assert tray.get(needs_both.remote(), timeout=60) == "ran"
    with pytest.raises(ActorDiedError):
        tray.get(a.ping.remote(), timeout=60)
