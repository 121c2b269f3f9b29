"""``tray logs``: print the log files of a cluster's workers, found by what ran there.

``--actor NAME`` (its worker, from the control store's actor table), ``--task ID`` (the
worker whose timeline holds that task or actor call), ``--node ID`` (all of a node's
workers), ``--worker PID``; no selector lists every file. Files live on their node's
machine: they are read through that node's scheduler (``log_files``/``read_log``),
never by path, so this works from any machine that reaches the head.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from ..cluster._logs import MAX_READ, last_lines
from ..core._timeline import SPANS, collect
from . import COMMANDS
from ._output import reports, table

FOLLOW_EVERY_S = 0.5
ASK_TIMEOUT_S = 10.0


class Chosen:
    """One log file to print: its node's scheduler, and the file's row from ``log_files``."""

    __slots__ = ("scheduler", "row")

    def __init__(self, scheduler: Any, row: dict[str, Any]) -> None:
        self.scheduler, self.row = scheduler, row

    @property
    def key(self) -> tuple[str, str]:
        return self.row["node_id"], self.row["name"]


async def _files(view: dict[str, Any], node_ids: list[str] | None = None) -> list[Chosen]:
    """The log files of the given nodes (default: all alive ones)."""
    found: list[Chosen] = []

    async def node(scheduler: Any) -> None:
        with trio.move_on_after(ASK_TIMEOUT_S):
            try:
                found.extend(Chosen(scheduler, row) for row in await scheduler.log_files.ask())
            except Exception:  # noqa: BLE001 - a node that died meanwhile has no files to show
                pass

    async with trio.open_nursery() as nursery:
        for node_id, (scheduler, *_rest) in view.items():
            if node_ids is None or node_id in node_ids:
                nursery.start_soon(node, scheduler)
    return sorted(found, key=lambda c: (c.row["node_id"], c.row["mtime"], c.row["name"]))


async def select(control: Any, args: argparse.Namespace) -> list[Chosen]:
    """The files the arguments name; raises LookupError saying why none match."""
    view = await control.view.ask()
    if args.actor is not None:
        rows = [r for r in await control.list_actors.ask() if args.actor in (r["name"], r["actor_id"])]
        if not rows:
            raise LookupError(f"no actor named {args.actor!r} is known to the cluster")
        row = next((r for r in rows if r["state"] == "ALIVE"), rows[-1])
        if row["node_id"] not in view:
            raise LookupError(f"actor {args.actor!r} ran on node {row['node_id']}, which is gone: so are its logs")
        return [c for c in await _files(view, [row["node_id"]]) if c.row["pid"] == row["pid"]]
    if args.task is not None:
        for w in await collect(control):
            if any(span[2] == args.task for span in w["spans"]):
                return [c for c in await _files(view, [w["node_id"]]) if c.row["pid"] == w["pid"]]
        raise LookupError(f"task {args.task} is not in any live worker's timeline: it has not run yet, or the "
                          f"worker that ran it is gone (or ran {SPANS} tasks since)")
    if args.node is not None:
        nodes = [n for n in view if n.startswith(args.node)]
        if not nodes:
            raise LookupError(f"no alive node's id starts with {args.node!r}; alive nodes: {', '.join(view)}")
        return await _files(view, nodes)
    if args.worker is not None:
        return [c for c in await _files(view) if c.row["pid"] == args.worker]
    return await _files(view)


async def _read(chosen: Chosen, offset: int) -> tuple[bytes, int]:
    """Up to MAX_READ bytes of a file from ``offset`` (negative: from its end), and where they end."""
    with trio.fail_after(ASK_TIMEOUT_S):
        data, end, _size = await chosen.scheduler.read_log.ask(chosen.row["name"], offset, MAX_READ)
    return data, end


async def _tail(chosen: Chosen, lines: int) -> tuple[bytes, int]:
    """The last ``lines`` lines of a file (negative: all), within its last MAX_READ bytes, and
    where they end."""
    data, end = await _read(chosen, -MAX_READ)
    return last_lines(data, end - len(data), lines), end


async def show(control: Any, args: argparse.Namespace, out: Any) -> None:
    """Print the chosen files (and, with ``--follow``, what they get, until cancelled); a
    header names the file whenever the output switches between files, as ``tail -f`` does."""
    chosen = await select(control, args)
    if all(v is None for v in (args.actor, args.task, args.node, args.worker)) and not args.follow:
        _listing(chosen, out)
        return
    if not chosen:
        raise LookupError("no log files match (the worker may not have written any yet)")
    offsets: dict[tuple[str, str], int] = {}
    multi = len(chosen) > 1
    last: tuple[str, str] | None = None

    def emit(c: Chosen, data: bytes) -> None:
        nonlocal last
        if not data:
            return
        if multi and c.key != last:
            out.write(f"==> node {c.row['node_id']}: {c.row['name']} <==\n")
        last = c.key
        out.write(data.decode(errors="replace"))

    for c in chosen:
        text, offsets[c.key] = await _tail(c, args.tail)
        emit(c, text)
    out.flush()
    while args.follow:
        await trio.sleep(FOLLOW_EVERY_S)
        if args.task is None:  # new workers of the node (a restarted actor's) come in
            chosen = await select(control, args)
            multi = multi or len(chosen) > 1
        for c in chosen:
            try:
                data, offsets[c.key] = await _read(c, offsets.get(c.key, 0))
            except Exception:  # noqa: BLE001 - its node is gone (or slow): nothing from it this round
                continue
            emit(c, data)
        out.flush()


def _listing(chosen: list[Chosen], out: Any) -> None:
    rows = [(c.row["node_id"], c.row["name"], c.row["size"],
             ("alive" if c.row["alive"] else "gone") + (f", actor {c.row['actor_id']}" if c.row["actor_id"] else ""))
            for c in chosen]
    out.write(table(("NODE", "FILE", "SIZE", "WORKER"), rows) + "\n")


def register(sub: argparse._SubParsersAction) -> None:
    """``tray logs``."""
    p = sub.add_parser("logs", help=COMMANDS["logs"].help,
                       description="Print the stdout/stderr files of the workers that ran an actor (--actor), a task"
                       " (--task), of a node (--node) or a worker process (--worker); without one, list every file."
                       " Files on other machines are read through their node.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--actor", help="the actor's name (or id): its worker's files")
    which.add_argument("--task", help="a task id (an ObjectRef's hex()): the files of the worker that ran it")
    which.add_argument("--node", help="a node id (or its start): all its workers' files")
    which.add_argument("--worker", type=int, metavar="PID", help="a worker process id: its files")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing what the files get, until Ctrl-C")
    p.add_argument(
        "--tail", type=int, default=1000, metavar="N",
        help="the last N lines of each file (default 1000; -1: all of its last MiB)",
    )
    p.add_argument("--address", help="the head's HOST:PORT (default: the newest cluster of this user on this machine)")


@reports("logs")
def run(args: argparse.Namespace) -> int:
    from ..core._gather import at, target

    async def main(_system: object, control: object) -> None:
        await show(control, args, sys.stdout)

    try:
        trio.run(at, *target(args.address), main)
    except KeyboardInterrupt:  # the end of --follow
        pass
    return 0
