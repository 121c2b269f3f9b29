"""``tray debug``: list the cluster's paused tasks (newest first) and attach to one.

The cluster is found as ``tray list`` finds it (``--address``, else the newest head started
on this machine, else the newest local ``tray.init()`` program), and so is its token, which
every session asks a client to prove. ``--debugpy`` turns every ``breakpoint()`` of the
cluster into a wait for an IDE while it runs, and lists those waits with where to attach.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
import time
from typing import Any

from tray import lowlevel

from . import _registry
from ._client import Detached, Terminal
from ._wire import connect

FOLLOW_TIMEOUT_S = 60.0  # how long ``remote`` waits for the followed task to stop in its worker
POLL_S = 0.2
PROMPT = "Enter breakpoint index or press enter to refresh: "
MAX_WHERE = 60


def register(sub: argparse._SubParsersAction) -> None:
    """``tray debug``."""
    p = sub.add_parser("debug", help="attach to tasks paused at breakpoint() in the cluster",
                       description="List the cluster's tasks and actors paused at breakpoint() (or, with post "
                       "mortem on, at the frame that raised), newest first, and attach this terminal to the one "
                       "chosen: `c` continues it and detaches, Ctrl-D detaches and leaves it paused, and the pdb "
                       "command `remote` follows the next remote call into the worker that runs it.")
    p.add_argument("--address", help="the head's HOST:PORT, or a node's address (default: the cluster started on "
                   "this machine, else the newest local tray.init() program)")
    p.add_argument("--debugpy", action="store_true",
                   help="while this runs, breakpoint() anywhere in the cluster waits for an IDE (VS Code, PyCharm) "
                   "through debugpy; the list says which host:port to attach it to")
    p.add_argument("--list", action="store_true", help="print the paused tasks and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        address, token = lowlevel.find_cluster(args.address)
    except ConnectionError as exc:
        print(f"tray debug: {exc}", file=sys.stderr)
        return 1
    call = functools.partial(lowlevel.control_call_at, address)
    try:
        if args.debugpy:
            _registry.set_mode(call, "debugpy")
        try:
            if args.list:
                print(table(active(call, address)))
                return 0
            return _choose(call, address, token)
        finally:
            if args.debugpy:
                _registry.set_mode(call, None)
    except ConnectionError as exc:
        print(f"tray debug: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print()
        return 0


def active(call: Any, address: str) -> list[dict[str, Any]]:
    """The listed sessions whose processes live; those of dead processes are taken off the list."""
    records = _registry.sessions(call)
    if not records:
        return []
    live, stale = _registry.alive(records, lowlevel.cluster_state("workers", address=address))
    for record in stale:
        _registry.remove(call, record["session_id"])
    return live


def table(records: list[dict[str, Any]]) -> str:
    """The sessions, numbered as the prompt takes them."""
    if not records:
        return "No active breakpoints."
    rows = [("INDEX", "SINCE", "KIND", "TASK", "WHERE", "PID", "NODE", "ATTACH")]
    for i, r in enumerate(records):
        since = datetime.datetime.fromtimestamp(r.get("time") or 0).strftime("%H:%M:%S")
        where = f"{r.get('filename')}:{r.get('lineno')}"
        if len(where) > MAX_WHERE:
            where = "..." + where[-(MAX_WHERE - 3):]
        attach = f"{r.get('host')}:{r.get('port')}" if r.get("kind") == "debugpy" else "tray debug"
        rows.append((str(i), since, str(r.get("kind")), str(r.get("name") or r.get("function")), where,
                     str(r.get("pid")), str(r.get("node_id")), attach))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "Active breakpoints:\n" + "\n".join(lines)


def _choose(call: Any, address: str, token: str) -> int:
    """The list, then the prompt, until Ctrl-C or Ctrl-D."""
    while True:
        records = active(call, address)
        print(table(records))
        choice = input(PROMPT).strip()
        if not choice:
            continue
        record = _pick(records, choice)
        if record is None:
            print(f"no breakpoint {choice!r}: give an index from the list (or a session id's start)")
            continue
        _attach(call, record, token)


def _pick(records: list[dict[str, Any]], choice: str) -> dict[str, Any] | None:
    if choice.isdigit():
        index = int(choice)
        return records[index] if index < len(records) else None
    found = [r for r in records if str(r.get("session_id", "")).startswith(choice)]
    return found[0] if len(found) == 1 else None


def _attach(call: Any, record: dict[str, Any] | None, token: str) -> None:
    """Forward one session (and the sessions its ``remote`` steps lead to) to this terminal."""
    while record is not None:
        if record.get("kind") == "debugpy":
            print(f"Attach your IDE's debugger to {record['host']}:{record['port']} (VS Code: \"Python Debugger: "
                  f"Remote Attach\"; PyCharm: \"Python Debug Server\"); the task waits until one attaches.")
            return
        try:
            chan, record = connect(record["host"], int(record["port"]), token)
        except OSError as exc:  # PermissionError too: a refused token
            print(f"cannot attach to {record.get('name')} at {record.get('host')}:{record.get('port')}: {exc}")
            return
        name = record.get("name") or record.get("function")
        print(f"Attached to {name} (pid {record.get('pid')}, node {record.get('node_id')}): `c` continues it and "
              f"detaches, Ctrl-D detaches and leaves it paused, `remote` follows its next remote call.")
        if record.get("error"):
            print(f"Post mortem: it raised {record['error']}")
        terminal = Terminal(chan)
        try:
            follow = terminal.run()
        except Detached:
            print("Detached; the task stays paused.")
            return
        finally:
            chan.close()
        print(f"Session ended: {terminal.ended or 'the connection closed'}.")
        record = _await_follow(call, follow) if follow else None


def _await_follow(call: Any, follow: str) -> dict[str, Any] | None:
    print("Following the next remote call into the worker that runs it...")
    deadline = time.monotonic() + FOLLOW_TIMEOUT_S
    while time.monotonic() < deadline:
        for record in _registry.sessions(call):
            if record.get("follow") == follow:
                return record
        time.sleep(POLL_S)
    print(f"No remote call was made within {FOLLOW_TIMEOUT_S:.0f} s; back to the list.")
    return None
