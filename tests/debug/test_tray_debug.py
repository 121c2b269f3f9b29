"""``breakpoint()`` in tasks, attached with ``tray debug`` driven as a real terminal program."""

from __future__ import annotations

import pexpect
import pytest

import tray
import tray.util.state
from tray import lowlevel
from tray.debug import _wire

PROMPT = "Enter breakpoint index or press enter to refresh: "


@tray.remote
def doubled(x: int) -> int:
    y = x * 2
    some_long_name = 5
    breakpoint()
    return y + some_long_name - 5


@tray.remote
def child(x: int) -> int:
    z = x + 1
    return z


@tray.remote
def parent(x: int) -> tuple[int, int]:
    import os

    breakpoint()
    return tray.get(child.remote(x)), os.getpid()


def attach(debug: pexpect.spawn, index: int = 0) -> None:
    debug.expect_exact(PROMPT)
    debug.sendline(str(index))
    debug.expect_exact("Attached to ")
    debug.expect_exact("(Pdb) ")


def test_attach_print_set_continue_and_the_result_reflects_it(driver: None, tray_debug, sessions) -> None:
    ref = doubled.remote(5)
    (session,) = sessions(1)
    assert session["name"] == "doubled" and session["filename"].endswith("test_tray_debug.py")
    states = {t["name"]: t["state"] for t in tray.util.state.list_tasks()}
    assert states["doubled"] == "PAUSED_AT_BREAKPOINT"

    debug = tray_debug()
    debug.expect_exact("Active breakpoints:")
    debug.expect(r"0\s+\d\d:\d\d:\d\d\s+breakpoint\s+doubled\s+\S+test_tray_debug.py:\d+")
    attach(debug)
    debug.sendline("p y")
    debug.expect_exact("10")
    debug.expect_exact("(Pdb) ")
    debug.send("p some_lo\t")  # completed by the remote pdb, which knows the frame
    debug.expect_exact("some_long_name")
    debug.sendline("")
    debug.expect_exact("5\r\n")
    debug.expect_exact("(Pdb) ")
    debug.sendline("y = 99")
    debug.expect_exact("(Pdb) ")
    debug.sendline("c")
    debug.expect_exact("Session ended: continued.")
    assert tray.get(ref, timeout=60) == 99
    debug.expect_exact("No active breakpoints.")
    debug.expect_exact(PROMPT)
    debug.sendeof()
    debug.expect(pexpect.EOF)
    debug.close()
    assert debug.exitstatus == 0
    assert sessions(0) == []


def test_a_connection_without_the_token_is_refused(driver: None, sessions) -> None:
    ref = doubled.remote(1)
    (session,) = sessions(1)
    with pytest.raises(PermissionError, match="wrong or missing cluster token"):
        _wire.connect(session["host"], session["port"], "not-the-token")
    sock_chan = None
    # A client that says nothing at all is cut off too, and the session still waits for a real one.
    import socket

    raw = socket.create_connection((session["host"], session["port"]), timeout=30)
    sock_chan = _wire.Channel(raw)
    hello = sock_chan.recv()
    assert hello is not None and hello["t"] == "hello" and "token" not in str(hello)
    sock_chan.send("auth", mac="0" * 64)
    assert sock_chan.recv() == {"t": "denied", "why": "wrong or missing cluster token"}
    assert sock_chan.recv() is None
    sock_chan.close()

    chan, record = _wire.connect(session["host"], session["port"], lowlevel.runtime_info().token)
    assert record["session_id"] == session["session_id"]
    assert chan.recv()["t"] == "out" and chan.recv() == {"t": "input"}
    chan.send("line", text="c")
    assert chan.recv() == {"t": "bye", "why": "continued"}
    chan.close()
    assert tray.get(ref, timeout=60) == 2


def test_two_breakpoints_on_two_workers_attached_one_after_the_other(driver: None, tray_debug, sessions) -> None:
    refs = [doubled.remote(1), doubled.remote(2)]
    sessions = sessions(2)
    assert len({s["pid"] for s in sessions}) == 2
    debug = tray_debug()
    debug.expect(r"0\s.*doubled.*\r\n1\s.*doubled")
    attach(debug, 1)
    debug.sendline("y = 100")
    debug.expect_exact("(Pdb) ")
    debug.sendline("c")
    debug.expect_exact("Session ended: continued.")
    debug.expect(r"Active breakpoints:\r\n.*\r\n0\s.*doubled")
    attach(debug, 0)
    debug.sendline("y = 200")
    debug.expect_exact("(Pdb) ")
    debug.sendline("c")
    debug.expect_exact("Session ended: continued.")
    assert sorted(tray.get(refs, timeout=60)) == [100, 200]


def test_remote_follows_a_nested_task_into_its_worker(driver: None, tray_debug, sessions) -> None:
    ref = parent.remote(3)
    (session,) = sessions(1)
    debug = tray_debug()
    attach(debug)
    debug.sendline("remote")
    debug.expect_exact("Following the next remote call")
    debug.expect(r"Attached to child \(pid (\d+)")
    child_pid = int(debug.match.group(1))
    debug.expect_exact("-> z = x + 1")
    debug.expect_exact("(Pdb) ")
    debug.sendline("p x")
    debug.expect_exact("3")
    debug.sendline("x = 10")
    debug.expect_exact("(Pdb) ")
    debug.sendline("c")
    debug.expect_exact("Session ended: continued.")
    value, parent_pid = tray.get(ref, timeout=60)
    assert value == 11
    assert parent_pid == session["pid"] != child_pid
    debug.expect_exact(PROMPT)  # back at the list: Ctrl-D leaves
    debug.sendeof()
    debug.expect(pexpect.EOF)


def test_a_get_waiting_on_a_paused_task_says_so(caplog: pytest.LogCaptureFixture, sessions) -> None:
    tray.init(num_cpus=1, _system_config={"get_warn_after_s": 0.5})
    try:
        ref = doubled.remote(2)
        (session,) = sessions(1)
        with caplog.at_level("WARNING", logger="tray"), pytest.raises(tray.exceptions.GetTimeoutError):
            tray.get(ref, timeout=3)
        assert "paused at a breakpoint" in caplog.text and "tray debug" in caplog.text
        chan, _record = _wire.connect(session["host"], session["port"], lowlevel.runtime_info().token)
        assert chan.recv()["t"] == "out" and chan.recv() == {"t": "input"}
        chan.send("line", text="c")
        assert chan.recv() == {"t": "bye", "why": "continued"}
        chan.close()
        assert tray.get(ref, timeout=60) == 4
    finally:
        tray.shutdown()
