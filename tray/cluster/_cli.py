"""``tray start``, ``tray stop`` and ``tray status``: run and inspect a cluster from a shell."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from ._session import DEFAULT_PORT, find_sessions, new_session_dir, remove_session, resolve

READY_TIMEOUT_S = 60.0


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--head", action="store_true", help="start the head node (it holds the control store)")
    p.add_argument("--address", help="join the cluster whose head is at HOST:PORT")
    p.add_argument("--port", type=int, help=f"the port to listen on (head: default {DEFAULT_PORT}; others: any)")
    p.add_argument("--node-ip-address", default="127.0.0.1",
                   help="the address to bind and announce (default 127.0.0.1: loopback only)")
    p.add_argument("--num-cpus", type=float, help="CPUs this node offers (default: all of the machine's)")
    p.add_argument("--num-gpus", type=float, help="GPUs this node offers (default 0)")
    p.add_argument("--resources", help='custom resources as JSON, e.g. \'{"gpu_box": 1}\'')
    p.add_argument("--object-store-memory", type=int, help="the object store's budget in bytes")
    p.add_argument("--storage", help="where the head persists the control store: sqlite:///PATH (default: a "
                   "file in its session directory) or redis://HOST:PORT")
    p.add_argument("--node-timeout", type=float,
                   help="seconds of silence after which a node is declared dead (default 5)")
    p.add_argument("--block", action="store_true", help="run in the foreground until Ctrl-C")


def start(args: argparse.Namespace) -> int:
    if args.head == bool(args.address):
        print("tray start: give either --head or --address HOST:PORT", file=sys.stderr)
        return 2
    if args.resources is not None:
        try:
            resources = json.loads(args.resources)
            if not isinstance(resources, dict) or not all(
                    isinstance(k, str) and isinstance(v, (int, float)) and v >= 0 for k, v in resources.items()):
                raise ValueError("not an object of names to numbers >= 0")
        except ValueError as exc:
            print(f"tray start: --resources must be a JSON object of names to amounts: {exc}", file=sys.stderr)
            return 2
    env = dict(os.environ)
    argv = ["--node-ip-address", args.node_ip_address]
    if args.head:
        argv.append("--head")
    else:
        try:
            head, env["TRAY_CLUSTER_TOKEN"] = resolve(args.address)
        except (ConnectionError, ValueError) as exc:
            print(f"tray start: {exc}", file=sys.stderr)
            return 1
        argv += ["--address", head]
    for flag in ("port", "num_cpus", "num_gpus", "resources", "object_store_memory", "storage", "node_timeout"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.block:
        from ._daemon import main

        os.environ.update(env)
        return main(argv)
    try:
        record, _proc = launch(argv, env)
    except RuntimeError as exc:
        print(f"tray start: {exc}", file=sys.stderr)
        return 1
    session_dir = record["session_dir"]
    token = env.get("TRAY_CLUSTER_TOKEN") or _token_of(session_dir)
    address = record["address"].partition("://")[2]
    if args.head:
        print(f"tray: started the head node at {address} (node {record['node_id']}, pid {record['pid']})\n"
              f"  add a node:    tray start --address {address}\n"
              f"  in Python:     tray.init(address=\"auto\")   or   tray.init(address=\"{address}\")\n"
              f"  cluster token: {token}   (set TRAY_CLUSTER_TOKEN to it on other machines)\n"
              f"  status:        tray status\n"
              f"  stop:          tray stop")
    else:
        print(f"tray: started a node at {address} (node {record['node_id']}, pid {record['pid']}), "
              f"joined the head at {record['head_address'].partition('://')[2]}")
    return 0


def launch(argv: list[str], env: dict[str, str]) -> tuple[dict[str, Any], subprocess.Popen]:
    """Start a node daemon in the background (its own session and process group); wait until
    it is ready and return its session record and process. RuntimeError, with the end of
    its log, if it does not start."""
    session_dir = new_session_dir()
    os.makedirs(os.path.join(session_dir, "logs"), exist_ok=True)
    log_path = os.path.join(session_dir, "logs", "node.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tray.cluster._daemon", *argv, "--session-dir", session_dir,
                                 "--ready-line"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                                start_new_session=True)
    line = _read_ready(proc)
    if line is None:
        proc.kill()
        proc.wait()
        import shutil

        tail = _tail(log_path)
        shutil.rmtree(session_dir, ignore_errors=True)
        raise RuntimeError(f"the node did not start; its log ended with:\n{tail}")
    return json.loads(line), proc


def _read_ready(proc: subprocess.Popen) -> str | None:
    """The daemon's ready line, or None if it exits (or takes too long) first."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=deadline - time.monotonic()):
            break
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        if b"\n" in buf:
            proc.stdout.close()
            return buf.split(b"\n", 1)[0].decode()
    proc.stdout.close()
    return None


def _token_of(session_dir: str) -> str:
    with open(os.path.join(session_dir, "session.json")) as f:
        return json.load(f)["token"]


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(args: argparse.Namespace) -> int:
    """Stop the nodes this user started on this machine, then sweep what dead sessions left."""
    nodes = find_sessions("head") + find_sessions("node")
    nodes.sort(key=lambda s: s["kind"] == "head")  # worker nodes first, the head last
    for s in nodes:
        _signal(s["pid"], signal.SIGKILL if args.force else signal.SIGTERM)
    deadline = time.monotonic() + (0 if args.force else args.grace)
    pending = [s for s in nodes if _alive(s["pid"])]
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [s for s in pending if _alive(s["pid"])]
    for s in pending:  # did not stop in time: the node and its workers (its process group) go
        kill_group(s["pid"])
    for s in nodes:
        print(f"tray: stopped the {'head ' if s['kind'] == 'head' else ''}node {s.get('node_id', '?')} (pid {s['pid']})")
    swept = sweep_dead_sessions()
    if swept:
        print(f"tray: removed {swept} leftover session(s) of processes that are gone")
    if not nodes and not swept:
        print("tray: no tray nodes of this user were running here")
    return 0


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _signal(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (its parent has not reaped it) is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def sweep_dead_sessions() -> int:
    """Remove the session directories and shared-memory files of sessions whose process is dead."""
    count = 0
    for s in find_sessions(alive=False):
        if not s["alive"]:
            remove_session(s["session_dir"], s.get("store_prefix"))
            count += 1
    return count


def status(args: argparse.Namespace) -> int:
    import trio

    try:
        address, token = resolve(args.address or "auto")
        nodes = trio.run(_nodes, address, token)
    except (ConnectionError, ValueError, OSError, trio.TooSlowError) as exc:
        print(f"tray status: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(nodes, indent=1, default=str))
        return 0
    alive = [n for n in nodes if n["Alive"]]
    print(f"======== Cluster status: {address.partition('://')[2]} ========")
    print(f"Nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")
    header = ("NODE_ID", "ADDRESS", "STATE", "HEAD", "RESOURCES (used/total)")
    rows = [header] + [(n["NodeID"], str(n["Address"]).partition("://")[2], n["State"], "yes" if n["IsHead"] else "",
                        _usage(n) if n["Alive"] else (n.get("DeathReason") or "")) for n in nodes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
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


async def _nodes(address: str, token: str) -> list[dict[str, Any]]:
    import trio

    from ..actors import ActorSystem
    from ..exceptions import RayError
    from ._control import CONTROL_NAME

    async with ActorSystem(token=token) as system:
        with trio.fail_after(10):
            try:
                control = await system.lookup_remote(address, CONTROL_NAME)
            except RayError as exc:
                raise ConnectionError(f"cannot reach the tray head at {address}: {exc}") from None
            if control is None:
                raise ConnectionError(f"no tray head answers at {address}")
            return await control.nodes_table.ask()

