"""Ray's log half of the state API (``ray.util.state.list_logs`` and ``get_log``).

A node keeps each worker's stdout and stderr in files of its own (``worker-<id>-<pid>.out``
and ``.err``); both calls reach them through the node's scheduler
(:func:`tray.lowlevel.log_files`, :func:`tray.lowlevel.read_log`), never by path, so they work
from any driver of the cluster. A log is named by its file, or by what ran there: an actor,
a task, a worker's pid.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Generator

from .. import lowlevel

CHUNK = 1 << 20  # bytes per read through the node
FOLLOW_EVERY_S = 0.5
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colour and cursor codes


def _node(node_id: str | None, node_ip: str | None) -> str | None:
    """The node a call names (by id, or by address), or None for all of them."""
    if node_id is not None or node_ip is None:
        return node_id
    from .state import list_nodes

    ids = [n["node_id"] for n in list_nodes(limit=None) if n["node_ip"] == node_ip and n["state"] == "ALIVE"]
    if not ids:
        raise ValueError(f"no alive node has the address {node_ip!r}")
    return ids[0]


def list_logs(address: str | None = None, node_id: str | None = None, node_ip: str | None = None,
              glob_filter: str | None = None, timeout: int = 30) -> dict[str, list[str]]:
    """The log files of a node (every node's when none is named), grouped as Ray groups them
    (``worker_out``, ``worker_err``), optionally only those matching ``glob_filter``."""
    del address, timeout  # this driver's cluster; every ask is bounded already
    groups: dict[str, list[str]] = {}
    for row in lowlevel.log_files(_node(node_id, node_ip)):
        if glob_filter is None or fnmatch.fnmatch(row["name"], glob_filter):
            groups.setdefault(f"worker_{row['stream']}", []).append(row["name"])
    return groups


def _find(node_id: str | None, filename: str | None, actor_id: str | None, task_id: str | None,
          pid: int | None, suffix: str) -> tuple[str, str]:
    """``(node_id, file name)`` of the log a get_log call names; ValueError saying why none."""
    if filename is not None:
        rows = [r for r in lowlevel.log_files(node_id) if r["name"] == filename]
        if not rows:
            raise ValueError(f"no log file {filename!r} on {'node ' + node_id if node_id else 'any node'}")
        return rows[0]["node_id"], filename
    if actor_id is not None:
        from .state import get_actor

        actor = get_actor(actor_id)
        if actor is None:
            raise ValueError(f"no actor {actor_id!r} is known to the cluster")
        node_id, pid = actor["node_id"], actor["pid"]
    elif task_id is not None:
        from .state import get_task

        task = get_task(task_id)
        if task is None or not task.get("worker_pid"):
            raise ValueError(f"task {task_id!r} is not known to the cluster or has not run yet")
        node_id, pid = task["node_id"], task["worker_pid"]
    if pid is None:
        raise ValueError("get_log needs a filename, actor_id, task_id or pid")
    rows = [r for r in lowlevel.log_files(node_id) if r["pid"] == pid and r["stream"] == suffix]
    if not rows:
        raise ValueError(f"no {suffix} log of worker pid {pid} (its node may be gone, or it wrote nothing yet)")
    return rows[-1]["node_id"], rows[-1]["name"]


def get_log(address: str | None = None, node_id: str | None = None, node_ip: str | None = None,
            filename: str | None = None, actor_id: str | None = None, task_id: str | None = None,
            pid: int | None = None, follow: bool = False, tail: int = -1, timeout: int = 30,
            suffix: str = "out", encoding: str | None = "utf-8", errors: str | None = "strict",
            submission_id: str | None = None, attempt_number: int = 0, _interval: float | None = None,
            filter_ansi_code: bool = False) -> Generator[str, None, None]:
    """A log's text, in chunks: the file ``filename``, or the ``suffix`` ("out" or "err") file
    of the worker that ran ``actor_id`` or ``task_id``, or of the worker ``pid``. ``tail``:
    its last N lines only (-1: all); ``follow``: keep yielding what it gets, every ``_interval``
    seconds, until closed; ``filter_ansi_code``: without terminal colour codes. A task's log is
    that of the worker its latest attempt ran in (``attempt_number`` is Ray's and not needed)."""
    del address, timeout, attempt_number
    if submission_id is not None:
        raise ValueError("a submitted job's driver log comes from JobSubmissionClient(...).get_job_logs(submission_id)")
    if suffix not in ("out", "err"):
        raise ValueError(f"suffix must be 'out' or 'err', got {suffix!r}")
    node, name = _find(_node(node_id, node_ip), filename, actor_id, task_id, pid, suffix)
    enc, errs = encoding or "utf-8", errors or "strict"
    every = FOLLOW_EVERY_S if _interval is None else _interval
    for chunk in _chunks(node, name, tail, follow, every, enc, errs):
        yield _ANSI.sub("", chunk) if filter_ansi_code else chunk


def _chunks(node: str, name: str, tail: int, follow: bool, every: float, enc: str,
            errs: str) -> Generator[str, None, None]:
    if tail >= 0:
        data, offset, _size = lowlevel.read_log(node, name, -CHUNK, CHUNK)
        text = lowlevel.last_lines(data, offset - len(data), tail)
        if text:
            yield text.decode(enc, errs)
    else:
        offset = 0
        while True:
            data, offset, size = lowlevel.read_log(node, name, offset, CHUNK)
            if data:
                yield data.decode(enc, errs)
            if offset >= size:
                break
    while follow:
        time.sleep(every)
        data, offset, _size = lowlevel.read_log(node, name, offset, CHUNK)
        if data:
            yield data.decode(enc, errs)
