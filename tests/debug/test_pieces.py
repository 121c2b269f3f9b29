"""The debugger's pieces on their own: records and their listing, the wire and its handshake,
the terminal side of a session, and the CLI's table, with a cluster only where one is needed."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tray
from tray import _config
from tray.debug import _cli, _registry, _wire
from tray.debug._client import Detached, Terminal


def record(**fields):
    return _registry.new_record(**{"session_id": "s", "kind": "breakpoint", **fields})


def test_records_have_every_column_and_refuse_unknown_ones() -> None:
    r = record(pid=1, time=2.0)
    assert set(r) == set(_registry.COLUMNS) and r["pid"] == 1 and r["host"] is None
    with pytest.raises(ValueError, match="unknown session fields: colour"):
        record(colour="red")
    with pytest.raises(ValueError, match="kind is one of"):
        _registry.new_record(session_id="s", kind="gdb")


@given(st.lists(st.tuples(st.floats(0, 1e10), st.text(max_size=4)), max_size=8))
def test_the_newest_session_comes_first(stamps: list[tuple[float, str]]) -> None:
    ordered = _registry.newest_first(record(session_id=sid, time=t) for t, sid in stamps)
    times = [r["time"] for r in ordered]
    assert times == sorted(times, reverse=True) and len(ordered) == len(stamps)


def test_sessions_of_dead_processes_are_stale() -> None:
    a, b = record(session_id="a", node_id="n", pid=1), record(session_id="b", node_id="n", pid=2)
    live, stale = _registry.alive([a, b], [{"node_id": "n", "pid": 1, "is_alive": True},
                                           {"node_id": "n", "pid": 2, "is_alive": False}])
    assert live == [a] and stale == [b]


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=50), st.integers(), st.none()), max_size=5))
def test_messages_cross_the_wire_whole(fields: dict) -> None:
    left, right = socket.socketpair()
    a, b = _wire.Channel(left), _wire.Channel(right)
    try:
        fields = {k: v for k, v in fields.items() if k != "t"}
        a.send("out", **fields)
        assert b.recv() == {"t": "out", **fields}
        a.close()
        assert b.recv() is None
    finally:
        b.close()


def test_bad_messages_are_a_broken_peer_not_a_crash() -> None:
    for garbage in (b"not json\n", b"[1, 2]\n", b'{"no": "type"}\n', b"x" * (_wire.MAX_FRAME + 2)):
        left, right = socket.socketpair()
        chan = _wire.Channel(right)
        try:
            sender = threading.Thread(target=lambda: (left.sendall(garbage), left.close()))  # noqa: B023
            sender.start()  # a large one fills the socket's buffer: written while read
            with pytest.raises(ConnectionError):
                chan.recv()
        finally:
            chan.close()
            sender.join(timeout=30)


def test_the_proof_depends_on_token_and_challenge() -> None:
    assert _wire.proof("t", "c") == _wire.proof("t", "c")
    assert len({_wire.proof("t", "c"), _wire.proof("u", "c"), _wire.proof("t", "d")}) == 3


class Scripted:
    """A session's side of a channel, replaying messages and keeping what the client sent."""

    def __init__(self, messages: list[dict]) -> None:
        self.messages, self.sent = list(messages), []

    def recv(self):
        return self.messages.pop(0) if self.messages else None

    def send(self, kind: str, **fields) -> None:
        self.sent.append({"t": kind, **fields})


def test_the_terminal_prints_output_asks_with_the_prompt_and_follows() -> None:
    chan = Scripted([{"t": "out", "text": "> f.py(3)f()\n-> x = 1\n(Pdb) "}, {"t": "input"},
                     {"t": "out", "text": "1\n(Pdb) "}, {"t": "input"}, {"t": "follow", "follow": "u"},
                     {"t": "bye", "why": "continued"}])
    prompts, answers, out = [], iter(["p x", "remote"]), io.StringIO()
    terminal = Terminal(chan, out, lambda prompt: prompts.append(prompt) or next(answers))  # type: ignore[arg-type]
    assert terminal.run() == "u"
    assert prompts == ["(Pdb) ", "(Pdb) "] and out.getvalue() == "> f.py(3)f()\n-> x = 1\n1\n"
    assert chan.sent == [{"t": "line", "text": "p x"}, {"t": "line", "text": "remote"}]
    assert terminal.ended == "continued"


def test_ctrl_d_detaches_and_ctrl_c_asks_again() -> None:
    def read(prompt: str) -> str:
        raise calls.pop(0)

    calls: list[BaseException] = [KeyboardInterrupt(), EOFError()]
    terminal = Terminal(Scripted([{"t": "input"}]), io.StringIO(), read)  # type: ignore[arg-type]
    with pytest.raises(Detached):
        terminal.run()
    assert calls == []


def test_the_table_numbers_sessions_and_names_where_to_attach_an_ide() -> None:
    assert _cli.table([]) == "No active breakpoints."
    text = _cli.table([record(session_id="abc", name="f", filename="/x/y.py", lineno=3, pid=7, node_id="n", time=0),
                       record(session_id="def", kind="debugpy", host="127.0.0.1", port=5678, function="g")])
    lines = text.splitlines()
    assert lines[0] == "Active breakpoints:" and lines[1].split()[:5] == ["INDEX", "SINCE", "KIND", "TASK", "WHERE"]
    assert lines[2].split()[2:5] == ["breakpoint", "f", "/x/y.py:3"] and lines[2].endswith("tray debug")
    assert lines[3].split()[2:4] == ["debugpy", "g"] and lines[3].endswith("127.0.0.1:5678")
    records = [record(session_id="abc"), record(session_id="abd")]
    assert _cli._pick(records, "1") is records[1] and _cli._pick(records, "2") is None
    assert _cli._pick(records, "abc") is records[0] and _cli._pick(records, "ab") is None


def test_the_settings_parse_and_name_their_variable() -> None:
    assert _config.resolve({"post_mortem": True}, env={}).post_mortem is True
    assert _config.resolve(env={"TRAY_DEBUG_POST_MORTEM": "yes", "TRAY_DEBUGGER": "DebugPy"}).debugger == "debugpy"
    assert _config.resolve(env={"TRAY_DEBUG_POST_MORTEM": "0"}).post_mortem is False
    with pytest.raises(ValueError, match="TRAY_DEBUG_POST_MORTEM must be 1 or 0"):
        _config.resolve(env={"TRAY_DEBUG_POST_MORTEM": "maybe"})
    with pytest.raises(ValueError, match="TRAY_DEBUGGER must be 'pdb' or 'debugpy'"):
        _config.resolve(env={"TRAY_DEBUGGER": "gdb"})


@tray.remote(max_retries=0)
def stops() -> None:
    breakpoint()


def test_a_session_whose_worker_died_leaves_the_list(driver: None, sessions) -> None:
    ref = stops.remote()
    (session,) = sessions(1)
    os.kill(session["pid"], signal.SIGKILL)
    with pytest.raises(tray.exceptions.WorkerCrashedError):
        tray.get(ref, timeout=60)
    address, _token = tray.lowlevel.find_cluster()
    out = subprocess.run([sys.executable, "-m", "tray", "debug", "--list", "--address", address],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "No active breakpoints."
    assert sessions(0) == []  # taken off the KV table too
