"""``tray list`` and ``tray summary``: the state API (``tray.util.state``) from a shell.

The cluster is found as ``tray status`` finds it (``--address``, else the newest head
started on this machine), else the newest local ``tray.init()`` program (as ``tray
memory``); the questions are the same as ``tray.util.state`` asks inside a driver.
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

from . import COMMANDS
from ._output import reports
from ._output import table as _table

RESOURCES = ("actors", "tasks", "objects", "nodes", "workers", "jobs", "placement-groups")
SUMMARIES = ("tasks", "actors", "objects")
MAX_CELL = 60  # characters of a table cell; --format json has everything


def register(sub: argparse._SubParsersAction) -> None:
    """``tray list`` and ``tray summary``."""
    p = sub.add_parser("list", help=COMMANDS["list"].help,
                       description="List one kind of the cluster's state, as Ray's `ray list`: rows with Ray's keys,"
                       " filtered with --filter KEY=VALUE (or KEY!=VALUE), at most --limit of them.")
    add_list_arguments(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser("summary", help=COMMANDS["summary"].help,
                       description="Counts of the cluster's tasks (by function and state), actors (by class and"
                       " state) or objects (by reference kind, with each node's store usage), as Ray's `ray summary`.")
    add_summary_arguments(p)
    p.set_defaults(func=run_summary)


def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resource", choices=RESOURCES)
    p.add_argument("--address", help="the head's HOST:PORT, or a node's address (default: the cluster started "
                   "on this machine, else the newest local tray.init() program)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep rows whose KEY equals VALUE (KEY!=VALUE: differs); repeat to combine")
    p.add_argument("--limit", type=int, default=100, help="at most so many rows (default 100)")
    p.add_argument("--detail", action="store_true", help="all columns, not only the main ones")
    p.add_argument("--format", choices=["table", "json"], default="table")


def add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resource", choices=SUMMARIES)
    p.add_argument("--address", help="as for tray list")
    p.add_argument("--format", choices=["table", "json"], default="table")


def parse_filter(text: str) -> tuple[str, str, str]:
    """``KEY=VALUE`` / ``KEY!=VALUE`` -> Ray's ``(key, predicate, value)``."""
    key, eq, value = text.partition("=")
    if not eq or not key.rstrip("!"):
        raise ValueError(f"bad filter {text!r}: use KEY=VALUE or KEY!=VALUE")
    return (key[:-1], "!=", value) if key.endswith("!") else (key, "=", value)


@reports("list", usage=(ValueError,))
def run_list(args: argparse.Namespace) -> int:
    from ..util.state import query

    resource = args.resource.replace("-", "_")
    filters = [parse_filter(f) for f in args.filter]
    rows, total = query(resource, filters, args.limit, args.detail, args.address)
    if args.format == "json":
        print(json.dumps(rows, indent=1, default=str))
        return 0
    now = datetime.datetime.now().isoformat(timespec="seconds")
    shown = f" (the first {len(rows)}: raise --limit for more)" if len(rows) < total else ""
    print(f"======== List {args.resource}: {now} ========\nTotal: {total}{shown}\n")
    if rows:
        print(table([k.upper() for k in rows[0]], [list(r.values()) for r in rows]))
    return 0


@reports("summary")
def run_summary(args: argparse.Namespace) -> int:
    from ..util import state

    summary = getattr(state, f"summarize_{args.resource}")(address=args.address)
    if args.format == "json":
        print(json.dumps(summary, indent=1, default=str))
        return 0
    now = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"======== {args.resource.capitalize()} summary: {now} ========")
    print(_summary_text(args.resource, summary))
    return 0


def _summary_text(resource: str, s: dict[str, Any]) -> str:
    if resource == "objects":
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(s["by_reference_type"].items())) or "-"
        stores = [[node, _mib(st["used"]), _mib(st["budget"]), st["in_memory"], _mib(st["spilled_bytes"])]
                  for node, st in s["stores"].items()]
        return (f"Total objects: {s['total_objects']}\nReferences by type: {kinds}\n\n" +
                table(["NODE_ID", "USED_MIB", "BUDGET_MIB", "IN_MEMORY", "SPILLED_MIB"], stores))
    c = s["cluster"]
    entries = list(c["summary"].values())
    counts = [", ".join(f"{state}: {n}" for state, n in sorted(e["state_counts"].items())) for e in entries]
    if resource == "tasks":
        head = (f"Total: {c['total_tasks']} task(s), {c['total_actor_tasks']} actor call(s), "
                f"{c['total_actor_scheduled']} actor creation(s)\n")
        body = table(["FUNC_OR_CLASS_NAME", "TYPE", "STATE_COUNTS"],
                     [[e["func_or_class_name"], e["type"], n] for e, n in zip(entries, counts, strict=True)])
    else:
        head = f"Total: {c['total_actors']} actor(s)\n"
        rows = [[e["class_name"], n] for e, n in zip(entries, counts, strict=True)]
        body = table(["CLASS_NAME", "STATE_COUNTS"], rows)
    return head + "\n" + body if entries else head


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """Aligned columns; long cells are cut (``--format json`` shows them whole)."""
    return _table(header, rows, MAX_CELL)
