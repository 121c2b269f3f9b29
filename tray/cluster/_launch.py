"""Starting node processes and cleaning up after them: what ``tray start`` / ``tray stop`` and
``tray.cluster_utils.Cluster`` share.

A node daemon starts in its own session and process group, says it is ready with one JSON
line on stdout (:func:`launch` waits for it), and is stopped by a signal to its pid; one that
does not stop in time goes with its whole group (:func:`kill_group`). A session whose
process is gone is swept (:func:`sweep_dead_sessions`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from ._session import find_sessions, new_session_dir, remove_session

READY_TIMEOUT_S = 60.0


def launch(argv: list[str], env: dict[str, str]) -> tuple[dict[str, Any], subprocess.Popen]:
    """Start a node daemon in the background (its own session and process group); wait until
    it is ready and return its session record and process. RuntimeError, with the end of
    its log, if it does not start."""
    session_dir = new_session_dir()
    os.makedirs(os.path.join(session_dir, "logs"), exist_ok=True)
    log_path = os.path.join(session_dir, "logs", "node.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tray.cluster._daemon", *argv, "--session-dir", session_dir,
                                 "--ready-line"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                                start_new_session=True)
    line = _read_ready(proc)
    if line is None:
        proc.kill()
        proc.wait()
        import shutil

        tail = _tail(log_path)
        shutil.rmtree(session_dir, ignore_errors=True)
        raise RuntimeError(f"the node did not start; its log ended with:\n{tail}")
    return json.loads(line), proc


def _read_ready(proc: subprocess.Popen) -> str | None:
    """The daemon's ready line, or None if it exits (or takes too long) first."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=deadline - time.monotonic()):
            break
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        if b"\n" in buf:
            proc.stdout.close()
            return buf.split(b"\n", 1)[0].decode()
    proc.stdout.close()
    return None


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process of ours: not gone, not a zombie (its parent has not
    reaped it: gone for our purposes), not a pid another user's process took since."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True  # no /proc here: os.kill said it runs


def send(pid: int, sig: int) -> None:
    """``sig`` to ``pid``, if it still runs."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a node and its workers), else the process alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        send(pid, signal.SIGKILL)


def stop_nodes(nodes: list[dict[str, Any]], force: bool, grace: float) -> None:
    """Stop the nodes of these session records: SIGTERM (SIGKILL with ``force``), and after
    ``grace`` seconds SIGKILL to the groups of those still running."""
    for s in nodes:
        send(s["pid"], signal.SIGKILL if force else signal.SIGTERM)
    deadline = time.monotonic() + (0 if force else grace)
    pending = [s for s in nodes if alive(s["pid"])]
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [s for s in pending if alive(s["pid"])]
    for s in pending:  # did not stop in time: the node and its workers (its process group) go
        kill_group(s["pid"])


def sweep_dead_sessions() -> int:
    """Remove the session directories and shared-memory files of sessions whose process is dead."""
    count = 0
    for s in find_sessions(alive=False):
        if not s["alive"]:
            remove_session(s["session_dir"], s.get("store_prefix"))
            count += 1
    return count


async def head_nodes(address: str, token: str) -> list[dict[str, Any]]:
    """The head's table of nodes (alive and dead), asked over a short-lived actor system."""
    import trio

    from ..actors import ActorSystem
    from ..exceptions import RayError
    from ._control import CONTROL_NAME

    async with ActorSystem(token=token) as system:
        with trio.fail_after(10):
            try:
                control = await system.lookup_remote(address, CONTROL_NAME)
            except RayError as exc:
                raise ConnectionError(f"cannot reach the tray head at {address}: {exc}") from None
            if control is None:
                raise ConnectionError(f"no tray head answers at {address}")
            return await control.nodes_table.ask()
