"""Worker log files: ``session_dir/logs/worker-{worker_id}-{pid}.out|err`` on each node.

Every node writes them (a driver's own node too, besides echoing to its terminal); the
node's scheduler lists and reads them for ``tray logs``, which may run on another
machine: files are named, never opened by path, from outside the node.
"""

from __future__ import annotations

import os
import re
from typing import Any

MAX_READ = 1 << 20  # bytes per read_log answer
_NAME = re.compile(r"^worker-(?P<worker_id>[A-Za-z0-9_]+)-(?P<pid>\d+)\.(?P<stream>out|err)$")


def log_dir_of(info: dict[str, Any]) -> str | None:
    """Where a node's worker logs go: its session directory's ``logs`` (a ``tray start``
    node names its session directory; a driver's node listens on a socket inside it)."""
    if info.get("session_dir"):
        return os.path.join(info["session_dir"], "logs")
    address = info.get("address") or ""
    if address.startswith("unix://"):
        return os.path.join(os.path.dirname(address[len("unix://"):]), "logs")
    return None


def log_name(worker_id: str, pid: int, stream: str) -> str:
    return f"worker-{worker_id}-{pid}.{stream}"


def list_logs(log_dir: str | None) -> list[dict[str, Any]]:
    """``{name, worker_id, pid, stream, size, mtime}`` of each worker log file, oldest first."""
    if log_dir is None:
        return []
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    rows = []
    for name in names:
        m = _NAME.match(name)
        if m is None:
            continue
        try:
            st = os.stat(os.path.join(log_dir, name))
        except OSError:
            continue
        rows.append({"name": name, "worker_id": m["worker_id"], "pid": int(m["pid"]), "stream": m["stream"],
                     "size": st.st_size, "mtime": st.st_mtime})
    return sorted(rows, key=lambda r: (r["mtime"], r["name"]))


def last_lines(data: bytes, window_start: int, lines: int) -> bytes:
    """The last ``lines`` lines (negative: all) of ``data``, a window of a log file starting at
    byte ``window_start``: a line the window cut at its start is left out."""
    parts = data.split(b"\n")
    if window_start > 0:
        parts = parts[1:]
    trailing = parts[-1:] == [b""]
    body = parts[:-1] if trailing else parts
    body = body[-lines:] if lines > 0 else body if lines < 0 else []
    return b"\n".join(body) + (b"\n" if trailing and body else b"")


def read_log(log_dir: str | None, name: str, offset: int, max_bytes: int) -> tuple[bytes, int, int]:
    """``(data, end_offset, size)``: up to ``max_bytes`` (at most ``MAX_READ``) of the log file
    ``name`` from ``offset`` (negative: that far before its end)."""
    if log_dir is None or _NAME.match(name) is None:
        raise ValueError(f"no worker log file {name!r} on this node")
    try:
        with open(os.path.join(log_dir, name), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            f.seek(start)
            data = f.read(max(0, min(max_bytes, MAX_READ)))
    except FileNotFoundError:
        raise ValueError(f"no worker log file {name!r} on this node") from None
    return data, start + len(data), size


def death_text(reason: Any, node_id: str, killed_by: str | None = None) -> str:
    """Why a worker died, for its callers' errors: how it ended (``reason``, what its
    WorkerProcess actor exited with, or ``killed_by``, who killed it on purpose, first: the
    owner reads "killed by the memory monitor" there), on which node, and the last lines
    of its stderr."""
    text = killed_by or str(reason)
    if node_id:
        text += f" on node {node_id}"
    tail = getattr(reason, "stderr_tail", None)
    if tail:
        text += "; the last lines of its stderr:\n" + "\n".join(f"    {line[:500]}" for line in tail)
    return text
