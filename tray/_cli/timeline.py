"""``tray timeline``: the cluster's recent tasks and actor calls as a Chrome trace file
(open it in chrome://tracing or https://ui.perfetto.dev), as ``tray.timeline`` makes it."""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import trio

from . import COMMANDS
from ._output import reports


def register(sub: argparse._SubParsersAction) -> None:
    """``tray timeline``."""
    p = sub.add_parser("timeline", help=COMMANDS["timeline"].help,
                       description="Write a Chrome trace (chrome://tracing, Perfetto) of every worker's recent tasks"
                       " and actor calls: one row per node (pid) and worker process (tid).")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write the trace (default: tray-timeline-DATE.json in the temp dir)")
    p.add_argument("--address", help="the head's HOST:PORT (default: the newest cluster of this user on this machine)")


@reports("timeline")
def run(args: argparse.Namespace) -> int:
    from ..core._gather import at, target
    from ..core._timeline import chrome_trace, collect, write

    async def main(_system: object, control: object) -> list:
        return chrome_trace(await collect(control))

    events = trio.run(at, *target(args.address), main)
    path = args.output or os.path.join(tempfile.gettempdir(), time.strftime("tray-timeline-%Y-%m-%d_%H-%M-%S.json"))
    write(events, path)
    spans = sum(1 for e in events if e["ph"] == "X")
    print(f"wrote {spans} spans to {path}; open it in chrome://tracing or https://ui.perfetto.dev")
    return 0
