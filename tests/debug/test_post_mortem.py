"""Post mortem: a task that raises waits at the raising frame for ``tray debug``, or fails as
usual after the timeout; in a driver, both debugger entry points stay the plain pdb."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import tray
from tray import lowlevel
from tray.debug import _wire

PROMPT = "Enter breakpoint index or press enter to refresh: "


@tray.remote(max_retries=0)
def broken(x: int) -> int:
    secret = x * 7
    raise ValueError(f"bad input {x} (secret {secret})")


@pytest.fixture
def post_mortem_driver() -> Iterator[None]:
    tray.init(num_cpus=2, _system_config={"post_mortem": True})
    yield
    tray.shutdown()


def test_a_raising_task_waits_at_the_frame_that_raised(post_mortem_driver: None, tray_debug, sessions) -> None:
    ref = broken.remote(1)
    (session,) = sessions(1)
    assert session["kind"] == "post_mortem" and session["name"] == "broken"
    assert session["error"] == "ValueError: bad input 1 (secret 7)"
    debug = tray_debug()
    debug.expect(r"0\s.*post_mortem\s+broken")
    debug.expect_exact(PROMPT)
    debug.sendline("0")
    debug.expect_exact("Post mortem: it raised ValueError: bad input 1")
    debug.expect_exact("(Pdb) ")
    debug.sendline("p secret * 2")
    debug.expect_exact("14")
    debug.expect_exact("(Pdb) ")
    debug.sendline("c")
    debug.expect_exact("Session ended")
    with pytest.raises(ValueError, match="bad input 1"):
        tray.get(ref, timeout=60)
    assert sessions(0) == []


def test_nobody_attaching_lets_the_task_fail_after_the_timeout(monkeypatch: pytest.MonkeyPatch, sessions) -> None:
    monkeypatch.setenv("TRAY_DEBUG_POST_MORTEM", "1")  # workers inherit the driver's environment
    monkeypatch.setenv("TRAY_DEBUG_POST_MORTEM_TIMEOUT_S", "0.5")
    tray.init(num_cpus=1)
    try:
        with pytest.raises(ValueError, match="bad input 2"):
            tray.get(broken.remote(2), timeout=60)
        assert sessions(0) == []
    finally:
        tray.shutdown()


def test_post_mortem_is_off_by_default(driver: None, sessions) -> None:
    with pytest.raises(ValueError, match="bad input 3"):
        tray.get(broken.remote(3), timeout=60)
    assert sessions(0) == []


@tray.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self, by: int) -> int:
        self.n += by
        breakpoint()
        return self.n


def test_an_actor_method_pauses_and_shows_paused_at_breakpoint(driver: None, sessions) -> None:
    import tray.util.state

    counter = Counter.remote()
    ref = counter.incr.remote(1)
    (session,) = sessions(1)
    assert session["name"] == "Counter.incr" and session["actor_id"] is not None
    states = {t["name"]: t["state"] for t in tray.util.state.list_tasks()}
    assert states["Counter.incr"] == "PAUSED_AT_BREAKPOINT"
    chan, _record = _wire.connect(session["host"], session["port"], lowlevel.runtime_info().token)
    try:
        assert chan.recv()["t"] == "out" and chan.recv() == {"t": "input"}
        chan.send("line", text="self.n = 50")
        assert chan.recv() == {"t": "out", "text": "(Pdb) "} and chan.recv() == {"t": "input"}
        chan.send("line", text="q")  # quit continues too: a task is never killed from its debugger
        assert chan.recv() == {"t": "bye", "why": "continued"}
    finally:
        chan.close()
    assert tray.get(ref, timeout=60) == 50
    states = {t["name"]: t["state"] for t in tray.util.state.list_tasks()}
    assert states["Counter.incr"] == "FINISHED"


DRIVER = """
import tray, tray.util.pdb
tray.init(num_cpus=1)
x = 5
tray.util.pdb.set_trace()
y = 6
breakpoint()
tray.shutdown()
print("done")
"""


def test_in_the_driver_breakpoint_and_set_trace_stay_the_plain_pdb() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    out = subprocess.run([sys.executable, "-c", DRIVER], input="p x * 100\nc\np y * 100\nc\n", text=True,
                         capture_output=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "(Pdb) 500" in out.stdout and "(Pdb) 600" in out.stdout and out.stdout.rstrip().endswith("done")
