"""``tray timeline``: the cluster's recent tasks and actor calls as a Chrome trace file
(open it in chrome://tracing or https://ui.perfetto.dev), as ``tray.timeline`` makes it."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import trio


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write the trace (default: tray-timeline-DATE.json in the temp dir)")
    p.add_argument("--address", help="the head's HOST:PORT (default: the newest cluster of this user on this machine)")


def run(args: argparse.Namespace) -> int:
    from .core._timeline import chrome_trace, collect, write
    from .core._gather import at, target

    async def main(_system: object, control: object) -> list:
        return chrome_trace(await collect(control))

    try:
        events = trio.run(at, *target(args.address), main)
    except (LookupError, ConnectionError, OSError, ValueError, trio.TooSlowError) as exc:
        print(f"tray timeline: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    path = args.output or os.path.join(tempfile.gettempdir(), time.strftime("tray-timeline-%Y-%m-%d_%H-%M-%S.json"))
    write(events, path)
    spans = sum(1 for e in events if e["ph"] == "X")
    print(f"wrote {spans} spans to {path}; open it in chrome://tracing or https://ui.perfetto.dev")
    return 0
