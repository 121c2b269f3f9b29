"""``tray start``, ``tray stop`` and ``tray status``: run and inspect a cluster from a shell.

Starting and stopping the node processes is :mod:`tray.cluster._launch`'s; this module
parses, checks and prints.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .. import _config
from ..cluster._session import DEFAULT_PORT
from . import COMMANDS
from ._output import failed, reports, table


def register(sub: argparse._SubParsersAction) -> None:
    """``tray start``, ``tray stop``, ``tray status``."""
    p = sub.add_parser("start", help=COMMANDS["start"].help,
                       description="Start a tray node in the background (or in the foreground with --block):"
                       " `tray start --head` starts a cluster, `tray start --address HOST:PORT` adds a node to it.")
    add_start_arguments(p)
    p.set_defaults(func=start)

    p = sub.add_parser("stop", help=COMMANDS["stop"].help,
                       description="Stop the tray nodes (and their workers) this user started on this machine,"
                       " and remove what dead sessions left behind (session directories, shared memory).")
    p.add_argument("--force", action="store_true", help="SIGKILL at once instead of stopping gracefully")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to wait before SIGKILL (default 10)")
    p.set_defaults(func=stop)

    p = sub.add_parser("status", help=COMMANDS["status"].help,
                       description="Show every node of the cluster (alive or dead) and its resources, used/total.")
    p.add_argument("--address", help="the head's HOST:PORT (default: the cluster started on this machine)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=status)


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--head", action="store_true", help="start the head node (it holds the control store)")
    p.add_argument("--address", help="join the cluster whose head is at HOST:PORT")
    p.add_argument("--port", type=int, help=f"the port to listen on (head: default {DEFAULT_PORT}; others: any)")
    p.add_argument("--node-ip-address", default="127.0.0.1",
                   help="the address to bind and announce (default 127.0.0.1: loopback only)")
    p.add_argument("--num-cpus", type=float, help="CPUs this node offers (default: all of the machine's)")
    p.add_argument("--num-gpus", type=float, help="GPUs this node offers (default 0)")
    p.add_argument("--resources", help='custom resources as JSON, e.g. \'{"gpu_box": 1}\'')
    p.add_argument("--labels", help="this node's labels (for label_selector), as Ray takes them: "
                   "'zone=us-1,tier=fast' (or a JSON object)")
    p.add_argument("--object-store-memory", type=int, help="the object store's budget in bytes")
    p.add_argument("--storage", help="where the head persists the control store: sqlite:///PATH (default: a "
                   "file in its session directory) or redis://HOST:PORT")
    p.add_argument("--node-timeout", type=float,
                   help="seconds of silence after which a node is declared dead (default 5)")
    p.add_argument("--block", action="store_true", help="run in the foreground until Ctrl-C")
    p.add_argument("--include-dashboard", type=_bool, default=None, metavar="BOOL",
                   help="serve the web dashboard from the head (default: true when tray[default] is installed)")
    p.add_argument("--dashboard-host", help="the dashboard's interface (default 127.0.0.1: this machine only)")
    p.add_argument("--dashboard-port", type=int, help="the dashboard's port (default 8265, or a free one if taken)")
    p.add_argument("--metrics-export-port", type=int,
                   help="this node's own Prometheus /metrics port, on --node-ip-address (default: a free one)")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _check_resources(text: str) -> None:
    resources = json.loads(text)
    if not isinstance(resources, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and v >= 0 for k, v in resources.items()):
        raise ValueError("not an object of names to numbers >= 0")


def start(args: argparse.Namespace) -> int:
    from ..cluster._launch import launch
    from ..cluster._session import resolve

    if args.head == bool(args.address):
        return failed("start", "give either --head or --address HOST:PORT", 2)
    if args.resources is not None:
        try:
            _check_resources(args.resources)
        except ValueError as exc:
            return failed("start", f"--resources must be a JSON object of names to amounts: {exc}", 2)
    if args.labels is not None:
        from ..cluster._labels import parse_labels_arg

        try:
            args.labels = json.dumps(parse_labels_arg(args.labels))  # the node process takes JSON
        except (ValueError, TypeError) as exc:
            return failed("start", f"--labels must be key=value pairs ('zone=us-1,tier=fast') or a JSON object "
                          f"of label keys to str values: {exc}", 2)
    env = dict(os.environ)
    argv = ["--node-ip-address", args.node_ip_address]
    token = None
    if args.head:
        argv.append("--head")
    else:
        try:
            head, token = resolve(args.address)
        except (ConnectionError, ValueError) as exc:
            return failed("start", exc)
        env.update(_config.to_env(cluster_token=token))
        argv += ["--address", head]
    for flag in ("port", "num_cpus", "num_gpus", "resources", "labels", "object_store_memory", "storage",
                 "node_timeout", "include_dashboard", "dashboard_host", "dashboard_port", "metrics_export_port"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.block:
        from ..cluster._daemon import main

        os.environ.update(env)
        return main(argv)
    try:
        record, _proc = launch(argv, env)
    except RuntimeError as exc:
        return failed("start", exc)
    session_dir = record["session_dir"]
    token = token or _config.get("cluster_token", env) or _token_of(session_dir)
    address = record["address"].partition("://")[2]
    if args.head:
        print(f"tray: started the head node at {address} (node {record['node_id']}, pid {record['pid']})\n"
              f"  add a node:    tray start --address {address}\n"
              f"  in Python:     tray.init(address=\"auto\")   or   tray.init(address=\"{address}\")\n"
              f"  cluster token: {token}   (set {_config.env_name('cluster_token')} to it on other machines)\n"
              + (f"  dashboard:     {record['dashboard_url']}   (sign in with the cluster token)\n"
                 if record.get("dashboard_url") else "")
              + (f"  metrics:       {record['metrics_url']}/metrics   (Prometheus, with the token)\n"
                 if record.get("metrics_url") else "") +
              "  status:        tray status\n"
              "  stop:          tray stop")
    else:
        print(f"tray: started a node at {address} (node {record['node_id']}, pid {record['pid']}), "
              f"joined the head at {record['head_address'].partition('://')[2]}")
    return 0


def _token_of(session_dir: str) -> str:
    with open(os.path.join(session_dir, "session.json")) as f:
        return json.load(f)["token"]


def stop(args: argparse.Namespace) -> int:
    """Stop the nodes this user started on this machine, then sweep what dead sessions left."""
    from ..cluster._launch import stop_nodes, sweep_dead_sessions
    from ..cluster._session import find_sessions

    nodes = find_sessions("head") + find_sessions("node")
    nodes.sort(key=lambda s: s["kind"] == "head")  # worker nodes first, the head last
    stop_nodes(nodes, args.force, args.grace)
    for s in nodes:
        kind = "head " if s["kind"] == "head" else ""
        print(f"tray: stopped the {kind}node {s.get('node_id', '?')} (pid {s['pid']})")
    swept = sweep_dead_sessions()
    if swept:
        print(f"tray: removed {swept} leftover session(s) of processes that are gone")
    if not nodes and not swept:
        print("tray: no tray nodes of this user were running here")
    return 0


@reports("status")
def status(args: argparse.Namespace) -> int:
    import trio

    from ..cluster._launch import head_nodes
    from ..cluster._session import resolve

    address, token = resolve(args.address or "auto")
    nodes = trio.run(head_nodes, address, token)
    if args.format == "json":
        print(json.dumps(nodes, indent=1, default=str))
        return 0
    alive = [n for n in nodes if n["Alive"]]
    print(f"======== Cluster status: {address.partition('://')[2]} ========")
    print(f"Nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")
    print(table(("NODE_ID", "ADDRESS", "STATE", "HEAD", "RESOURCES (used/total)"),
                [(n["NodeID"], str(n["Address"]).partition("://")[2], n["State"], "yes" if n["IsHead"] else "",
                  _usage(n) if n["Alive"] else (n.get("DeathReason") or "")) for n in nodes]))
    total: dict[str, float] = {}
    free: dict[str, float] = {}
    for n in alive:
        for k, v in n["Resources"].items():
            total[k] = total.get(k, 0) + v
        for k, v in n["Available"].items():
            free[k] = free.get(k, 0) + v
    print("Resources (used/total): " + _usage({"Resources": total, "Available": free}))
    return 0


def _usage(node: dict[str, Any]) -> str:
    parts = []
    for k, v in sorted(node["Resources"].items()):
        if "_group_" in k:
            continue
        used = v - node["Available"].get(k, 0)
        if k in ("memory", "object_store_memory"):
            parts.append(f"{used / 2**30:.1f}/{v / 2**30:.1f} GiB {k}")
        else:
            parts.append(f"{used:g}/{v:g} {k}")
    return ", ".join(parts)
