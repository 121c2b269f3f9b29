"""Where the cluster's debugger sessions are listed: the control store's KV table.

Each open session is one key (``session:<id>``) in the ``tray_debug`` namespace whose value
is its record (JSON): where to attach and what it stopped. ``tray debug --debugpy`` sets the
``mode`` key while it runs, so every ``breakpoint()`` in the cluster opens debugpy instead of
pdb. The functions take ``call(method, *args)``, the control store's ask: a worker's
``tray.lowlevel.control_call``, or the CLI's ``control_call_at`` bound to its address.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

NAMESPACE = "tray_debug"
PREFIX = "session:"
MODE_KEY = "mode"

Call = Callable[..., Any]

COLUMNS = ("session_id", "kind", "host", "port", "pid", "node_id", "job_id", "task_id", "actor_id", "name",
           "function", "filename", "lineno", "time", "follow", "error")
KINDS = ("breakpoint", "post_mortem", "debugpy")


def new_record(**fields: Any) -> dict[str, Any]:
    """A session's record: every column (those not given are None); ValueError on an unknown one."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown session fields: {', '.join(sorted(unknown))}")
    if fields.get("kind") not in KINDS:
        raise ValueError(f"a session's kind is one of {', '.join(KINDS)}, got {fields.get('kind')!r}")
    return {c: fields.get(c) for c in COLUMNS}


def put(call: Call, record: dict[str, Any]) -> None:
    call("kv_put", NAMESPACE, PREFIX + record["session_id"], json.dumps(record).encode(), True)


def remove(call: Call, session_id: str) -> None:
    call("kv_del", NAMESPACE, PREFIX + session_id, False)


def sessions(call: Call) -> list[dict[str, Any]]:
    """Every listed session, newest first (records that do not parse are left out)."""
    found = []
    for key in call("kv_keys", NAMESPACE, PREFIX):
        raw = call("kv_get", NAMESPACE, key)
        if raw is None:  # ended between the two asks
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return newest_first(found)


def newest_first(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (-(r.get("time") or 0), str(r.get("session_id"))))


def alive(records: list[dict[str, Any]], workers: Iterable[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """``(alive, stale)``: a session is stale when its process is not among the cluster's
    live ``workers`` rows (it died paused, and could not take its record away)."""
    live = {(w.get("node_id"), w.get("pid")) for w in workers if w.get("is_alive", True)}
    keep = [r for r in records if (r.get("node_id"), r.get("pid")) in live]
    return keep, [r for r in records if (r.get("node_id"), r.get("pid")) not in live]


def get_mode(call: Call) -> str | None:
    raw = call("kv_get", NAMESPACE, MODE_KEY)
    return raw.decode() if raw else None


def set_mode(call: Call, mode: str | None) -> None:
    if mode is None:
        call("kv_del", NAMESPACE, MODE_KEY, False)
    else:
        call("kv_put", NAMESPACE, MODE_KEY, mode.encode(), True)
