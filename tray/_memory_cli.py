"""``tray memory``: the objects of a running local node, from another process.

It finds the node through its session file (or ``--address``), joins with the node's
token, and asks the same questions as ``tray.util.state`` does inside a driver.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import trio


def _session(address: str | None) -> tuple[str, str]:
    from .cluster._session import find_sessions

    sessions = find_sessions()
    if address is not None:
        token = os.environ.get("TRAY_CLUSTER_TOKEN")
        match = next((s for s in sessions if s["address"] == address), None)
        if token is None and match is None:
            raise LookupError(f"no token for {address}: set TRAY_CLUSTER_TOKEN, or run this as the user who "
                              f"started that node")
        return address, token or match["token"]  # type: ignore[index]
    if not sessions:
        raise LookupError("no running tray node of this user was found; start one with tray.init() in a "
                          "program (or pass --address)")
    return sessions[0]["address"], sessions[0]["token"]


async def _ask(address: str, token: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from .actors import ActorSystem
    from .util.state import gather

    async with ActorSystem(token=token) as system:
        with trio.fail_after(30):
            return await gather(system, address)


def run(address: str | None, fmt: str, stats_only: bool) -> int:
    from .util.state import memory_summary, summarize

    try:
        address, token = _session(address)
        rows, stats = trio.run(_ask, address, token)
    except (LookupError, ConnectionError, OSError, trio.TooSlowError) as exc:
        print(f"tray memory: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if fmt == "json":
        print(json.dumps(summarize(rows, stats) if stats_only else {"objects": rows, "store": stats}, indent=1))
    else:
        print(memory_summary(rows, stats, stats_only))
    return 0
