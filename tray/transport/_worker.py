"""A bare worker process: one ActorSystem listening on an address, until its parent goes.

    python -m tray.transport._worker unix:///tmp/tray-x/w.sock [--import mod ...]

Prints ``READY <address>`` on stdout once listening; exits when stdin closes (its
parent died or let go of it), so tests and tools never leave one behind. The cluster
token comes from ``TRAY_CLUSTER_TOKEN``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import trio

from ..actors import ActorSystem
from ._config import NetConfig


async def _main(address: str, heartbeat: float) -> None:
    async with ActorSystem(address=address, net=NetConfig(heartbeat_interval=heartbeat)) as system:
        print(f"READY {system.address}", flush=True)
        # Blocking read in a thread: returns at EOF, i.e. when the parent is gone.
        await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tray.transport._worker")
    p.add_argument("address")
    p.add_argument("--import", dest="imports", action="append", default=[])
    p.add_argument("--heartbeat", type=float, default=1.0)
    args = p.parse_args(argv)
    for mod in args.imports:
        importlib.import_module(mod)
    try:
        trio.run(_main, args.address, args.heartbeat)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
