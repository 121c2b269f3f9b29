"""``tray memory``: the objects of a running local node, from another process.

It finds the node as ``tray list`` does (``--address``, else the newest cluster or
``tray.init()`` program of this user here), and asks the same questions as
``tray.util.state`` does inside a driver.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import trio


async def _ask(address: str, token: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from .actors import ActorSystem
    from .core._gather import node_memory as gather

    async with ActorSystem(token=token) as system:
        with trio.fail_after(30):
            return await gather(system, address)


def run(address: str | None, fmt: str, stats_only: bool) -> int:
    from .core._gather import target
    from .util.state import memory_summary, summarize

    try:
        address, token = target(address)
        rows, stats = trio.run(_ask, address, token)
    except (LookupError, ConnectionError, OSError, trio.TooSlowError) as exc:
        print(f"tray memory: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if fmt == "json":
        print(json.dumps(summarize(rows, stats) if stats_only else {"objects": rows, "store": stats}, indent=1))
    else:
        print(memory_summary(rows, stats, stats_only))
    return 0
