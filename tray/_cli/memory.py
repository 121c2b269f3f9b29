"""``tray memory``: the objects of a running local node, from another process.

It finds the node as ``tray list`` does (``--address``, else the newest cluster or
``tray.init()`` program of this user here), and asks the same questions as
``tray.util.state`` does inside a driver.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import trio

from . import COMMANDS
from ._output import reports


def register(sub: argparse._SubParsersAction) -> None:
    """``tray memory``."""
    p = sub.add_parser(
        "memory",
        help=COMMANDS["memory"].help,
        description="List every object reference of a running tray node (id, size, owner, location:"
        " memory or spilled, reference kind) and the object store's usage. Without --address, the"
        " newest local node of this user.",
    )
    p.add_argument("--address", help="the node's address (default: the newest running local node)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--stats-only", action="store_true", help="only the object store's usage")
    p.set_defaults(func=run)


async def _ask(address: str, token: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ..actors import ActorSystem
    from ..core._gather import node_memory as gather

    async with ActorSystem(token=token) as system:
        with trio.fail_after(30):
            return await gather(system, address)


@reports("memory")
def run(args: argparse.Namespace) -> int:
    from ..core._gather import target
    from ..util.state import memory_summary, summarize

    address, token = target(args.address)
    rows, stats = trio.run(_ask, address, token)
    if args.format == "json":
        print(json.dumps(summarize(rows, stats) if args.stats_only else {"objects": rows, "store": stats}, indent=1))
    else:
        print(memory_summary(rows, stats, args.stats_only))
    return 0
