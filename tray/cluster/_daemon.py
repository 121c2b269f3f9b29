"""A node process: what ``tray start`` runs, in the background or (``--block``) in the foreground.

    python -m tray.cluster._daemon --head --port 6380 ...
    python -m tray.cluster._daemon --address tcp://HEAD:6380 ...

It hosts one node's system actors (the head's also the control store, persisted to
``--storage``) in an actor system listening on TCP, writes its session file, prints one
JSON line to stdout when it is ready (what ``tray start`` waits for), and runs until
SIGTERM or SIGINT, when it stops its workers and removes its session directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from typing import Any

import trio

from .. import _config
from ._session import DEFAULT_PORT, new_session_dir, write_session

log = logging.getLogger("tray.cluster")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tray.cluster._daemon")
    p.add_argument("--head", action="store_true")
    p.add_argument("--address", help="the head to join (tcp://HOST:PORT)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--node-ip-address", default="127.0.0.1")
    p.add_argument("--num-cpus", type=float, default=None)
    p.add_argument("--num-gpus", type=float, default=None)
    p.add_argument("--resources", type=json.loads, default=None)
    p.add_argument("--labels", type=json.loads, default=None)
    p.add_argument("--object-store-memory", type=int, default=None)
    p.add_argument("--storage", default=None)
    p.add_argument("--node-timeout", type=float, default=None)
    p.add_argument("--session-dir", default=None)
    p.add_argument("--include-dashboard", type=lambda v: v.lower() in ("1", "true", "yes", "on"), default=None)
    p.add_argument("--dashboard-host", default=None)
    p.add_argument("--dashboard-port", type=int, default=None)
    p.add_argument("--metrics-export-port", type=int, default=None)
    p.add_argument("--ready-line", action="store_true", help="say 'ready' as one JSON line on stdout, then "
                   "send stdout to the log (how `tray start` waits for a node in the background)")
    return p


def net_config(node_timeout: float | None) -> Any:
    """Heartbeats fine enough that a silent peer is declared dead within ``node_timeout`` s."""
    from ..transport import NetConfig

    if node_timeout is None:
        node_timeout = _config.get("node_timeout_s")
    return NetConfig(heartbeat_interval=min(1.0, node_timeout / 4), heartbeat_timeout=node_timeout)


async def serve(args: argparse.Namespace, ready: Any) -> None:
    from ..actors import ActorSystem
    from ..store._persist import open_storage
    from ._node import LocalNode, StoreConfig, node_resources

    token = _config.get("cluster_token") or secrets.token_hex(16)
    ip = args.node_ip_address
    os.environ.update(_config.to_env(cluster_token=token, node_ip=ip))  # the workers' environment
    session_dir = args.session_dir or new_session_dir()
    logs = os.path.join(session_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    port = args.port if args.port is not None else (DEFAULT_PORT if args.head else 0)
    resources = node_resources(args.num_cpus, args.num_gpus, args.resources,
                               object_store_memory=args.object_store_memory, ip=ip, head=args.head)
    storage_url = args.storage if args.storage is not None else (
        f"sqlite:///{os.path.join(session_dir, 'control.db')}" if args.head else None)
    async with ActorSystem(address=f"tcp://{ip}:{port}", token=token, net=net_config(args.node_timeout)) as system:
        if not args.head:
            await _check_head(system, args.address)
        async with open_storage(storage_url if args.head else None) as storage:
            store = StoreConfig(f"tray-{os.urandom(4).hex()}-", os.path.join(session_dir, "spill"),
                                args.object_store_memory)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            node = LocalNode(system, resources, env, store, head=args.head, head_address=args.address,
                             dashboard=_dashboard(args), metrics=_metrics(args), labels=args.labels,
                             storage=storage if args.head else None, echo_output=False, log_dir=logs,
                             info={"ip": ip, "port": int(system.address.rpartition(":")[2]),  # type: ignore[union-attr]
                                   "session_dir": session_dir})
            scheduler = await node.start()
            with trio.fail_after(60):
                info = await scheduler.node_info.ask()
            kind = "head" if args.head else "node"
            head_address = system.address if args.head else args.address
            record = {"kind": kind, "address": head_address if args.head else system.address,
                      "head_address": head_address, "node_address": system.address, "token": token,
                      "pid": os.getpid(), "node_id": info["node_id"], "store_prefix": store.prefix,
                      "storage": storage_url, "session_dir": session_dir, "dashboard_url": node.dashboard_url,
                      "metrics_url": node.metrics_url}
            write_session(session_dir, record)
            ready(record)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info("%s: stopping the node", signal.Signals(signum).name)
                    break
            await node.stop()
            if args.head:
                await storage.flush()
    import shutil

    shutil.rmtree(session_dir, ignore_errors=True)


def _dashboard(args: argparse.Namespace) -> dict[str, Any] | None:
    """The head's dashboard settings (None: no dashboard), as ``tray.init()`` decides them."""
    from ._node import dashboard_available

    include = args.include_dashboard
    if not args.head or include is False or (include is None and not dashboard_available()):
        return None
    if include and not dashboard_available():
        raise ImportError('--include-dashboard needs the dashboard\'s packages: pip install "tray[default]"')
    return {"host": args.dashboard_host or "127.0.0.1", "port": args.dashboard_port}


def _metrics(args: argparse.Namespace) -> dict[str, Any] | None:
    """The node's own metrics port (Ray's ``--metrics-export-port``; default: a free port when the
    dashboard's packages are installed, else none)."""
    from ._node import dashboard_available

    if not dashboard_available():
        if args.metrics_export_port is not None:
            raise ImportError('--metrics-export-port needs the dashboard\'s packages: pip install "tray[default]"')
        return None
    return {"host": args.node_ip_address, "port": args.metrics_export_port or 0}


async def _check_head(system: Any, address: str) -> None:
    """Fail now, with the reason, if the head is unreachable or refuses us (a wrong token):
    a node that cannot join should not sit there retrying in silence."""
    from ..exceptions import RayError
    from ._control import CONTROL_NAME
    from ._session import unreachable

    try:
        with trio.fail_after(30):
            control = await system.lookup_remote(address, CONTROL_NAME)
    except (RayError, trio.TooSlowError) as exc:
        raise ConnectionError(unreachable(address, exc)) from None
    if control is None:
        raise ConnectionError(f"{address} is a tray node but not the head of a cluster (no control store there)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.head and not args.address:
        print("either --head or --address HOST:PORT is needed", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from setproctitle import setproctitle

        setproctitle(f"tray::{'head' if args.head else 'node'}")
    except ImportError:  # pragma: no cover - a dependency
        pass

    def ready(record: dict[str, Any]) -> None:
        if args.ready_line:
            sys.stdout.write(json.dumps({**record, "token": None}) + "\n")
            sys.stdout.flush()
            os.dup2(2, 1)  # `tray start` read the line: from now on, stdout is the node's log
        else:  # in the foreground (tray start --block)
            what = "the head node" if args.head else "a node"
            print(f"tray: {what} is up at {record['node_address'].partition('://')[2]} (node {record['node_id']}, "
                  f"token {record['token']}); Ctrl-C stops it", flush=True)
            if record.get("dashboard_url"):
                print(f"tray: dashboard at {record['dashboard_url']}", flush=True)
            if record.get("metrics_url"):
                print(f"tray: metrics at {record['metrics_url']}/metrics", flush=True)

    try:
        trio.run(serve, args, ready)
    except Exception as exc:  # noqa: BLE001 - the launcher shows this to the user
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # type: ignore[assignment]
        expected = isinstance(exc, (ConnectionError, OSError, ValueError, ImportError))
        log.error("the node failed: %s: %s", type(exc).__name__, exc, exc_info=not expected)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
