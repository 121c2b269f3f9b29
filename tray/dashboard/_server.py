"""The dashboard's server process (``python -m tray.dashboard``), started by
:class:`~tray.dashboard._head.DashboardProcess` with the listening socket it inherits.

It joins the cluster as a driver (namespace ``_tray_dashboard``), serves the app with
hypercorn's trio worker on the inherited socket, and exits when its stdin closes (its
actor stopped, or the head died). Standalone, ``--host/--port`` bind a socket of its own.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import socket
import sys
import threading
from typing import Any

log = logging.getLogger("tray.dashboard")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tray.dashboard", description="tray's dashboard server")
    p.add_argument("--address", required=True, help="the cluster node to join (what tray.init(address=...) takes)")
    p.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8265)
    p.add_argument("--url", default="")
    p.add_argument("--session-dir", default=None, help="the head's session directory (job logs go to its logs/)")
    return p


def _watch_stdin(stop: Any) -> None:
    """Our owner closes stdin (or dies): stop serving."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop()


def release_freed_memory() -> None:
    """Give the heap that start-up (imports, joining the cluster) used and freed back to the
    system: glibc keeps it otherwise, and the server mostly idles. A few MiB of RSS."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from setproctitle import setproctitle

        setproctitle("tray::dashboard")
    except ImportError:  # pragma: no cover - a dependency
        pass
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    import tray

    from ._app import build_app

    token = os.environ.get("TRAY_CLUSTER_TOKEN", "")
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), reuse_port=False)
    sock.setblocking(False)
    tray.init(address=args.address, namespace="_tray_dashboard", log_to_driver=False)
    session_dir = args.session_dir or tray.lowlevel.runtime_info().session_dir or os.path.join(
        os.path.expanduser("~"), ".tray")
    app = build_app(token=token, log_dir=os.path.join(session_dir, "logs"),
                    resources_dir=os.path.join(session_dir, "runtime_resources"), url=args.url)
    release_freed_memory()
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = log
    config.graceful_timeout = 1.0

    async def run() -> None:
        stop = trio.Event()
        token_ = trio.lowlevel.current_trio_token()
        threading.Thread(target=_watch_stdin, args=(lambda: token_.run_sync_soon(stop.set),), daemon=True).start()
        await serve(app, config, shutdown_trigger=stop.wait)

    try:
        trio.run(run)
    finally:
        tray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
