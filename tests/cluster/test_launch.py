"""cluster/_launch: is a pid alive, and sweeping what dead sessions left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tray.cluster._launch import alive, sweep_dead_sessions
from tray.cluster._session import find_sessions, new_session_dir, write_session


def test_alive_is_false_for_gone_and_zombie_processes() -> None:
    assert alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # exited but not reaped: a zombie, gone for our purposes
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
        time.sleep(0.01)
    assert not alive(proc.pid)
    proc.wait()
    assert not alive(proc.pid)


def test_a_dead_sessions_leftovers_are_swept_and_a_live_one_is_kept(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead, live = new_session_dir(), new_session_dir()
    write_session(dead, {"kind": "node", "pid": proc.pid})
    write_session(live, {"kind": "node", "pid": os.getpid()})
    assert [s["session_dir"] for s in find_sessions("node")] == [live]
    assert sweep_dead_sessions() == 1
    assert not os.path.exists(dead) and os.path.exists(live)
    assert sweep_dead_sessions() == 0
