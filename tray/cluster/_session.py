"""Session directories: how the processes of one user on one machine find each other.

Every node (``tray start`` daemons, and a driver hosting its own node) has a private
directory (mode 0700) named ``tray-session-*`` in the temp dir, holding a
``session.json`` (mode 0600: it carries the cluster token), its sockets, spill files and
logs. ``tray.init(address="auto")``, ``tray stop``, ``tray status`` and ``tray memory``
read these files; nothing else is needed to find a local cluster.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
from typing import Any

from .. import _config

SESSION_FILE = "session.json"
PREFIX = "tray-session-"
DEFAULT_PORT = 6380


def new_session_dir() -> str:
    return tempfile.mkdtemp(prefix=PREFIX)


def write_session(session_dir: str, info: dict[str, Any]) -> None:
    path = os.path.join(session_dir, SESSION_FILE)
    fd = os.open(path + ".tmp", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(path + ".tmp", path)


def find_sessions(kind: str | None = None, alive: bool = True) -> list[dict[str, Any]]:
    """This user's sessions on this machine (newest first), optionally of one ``kind``
    ("driver", "head", "node"); with ``alive``, only those whose process still runs."""
    # _launch builds on this module: imported at use
    from ._launch import alive as running

    found = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*", SESSION_FILE)):
        try:
            with open(path) as f:
                info = json.load(f)
            info["mtime"] = os.path.getmtime(path)
            info["session_dir"] = os.path.dirname(path)
            is_running = running(info["pid"])
        except (OSError, ValueError, KeyError):
            continue
        if alive and not is_running:
            continue
        info["alive"] = is_running
        if kind is None or info.get("kind", "driver") == kind:
            found.append(info)
    return sorted(found, key=lambda i: -i["mtime"])


def remove_session(session_dir: str, store_prefix: str | None) -> None:
    """What a session whose process is gone (killed) could not remove itself: its directory
    and its object store's shared-memory files."""
    import shutil

    if store_prefix:
        for path in glob.glob(f"/dev/shm/{store_prefix}*"):
            try:
                os.unlink(path)
            except OSError:
                pass
    shutil.rmtree(session_dir, ignore_errors=True)


def normalize(address: str) -> str:
    """``host:port`` / ``tcp://host:port`` -> ``tcp://host:port`` (the port defaults to 6380)."""
    address = address.strip()
    if address.startswith(("tcp://", "unix://")):
        return address
    if "://" in address:
        raise ValueError(f"unsupported address {address!r}: use HOST:PORT or tcp://HOST:PORT")
    host, _, port = address.rpartition(":") if ":" in address else (address, "", str(DEFAULT_PORT))
    if not host or not port.isdigit():
        raise ValueError(f"bad address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    return f"tcp://{host}:{port}"


def resolve(address: str) -> tuple[str, str]:
    """The cluster address and token for ``tray.init(address=...)`` / ``tray start --address``.

    ``"auto"`` is the newest head started on this machine by this user (``tray start --head``),
    else the newest node a driver hosts (a ``tray.init()`` running in another process), as
    Ray's ``address="auto"`` finds a local ``ray.init()`` instance; ``TRAY_ADDRESS`` overrides.
    The token comes from ``TRAY_CLUSTER_TOKEN``, else from the local session file of the node
    at that address.
    """
    if address == "auto":
        env = _config.get("address")
        if env and env != "auto":
            return resolve(env)
        found = joinable()
        if not found:
            raise ConnectionError("tray.init(address='auto'): no running tray cluster was found on this machine; "
                                  "start one with `tray start --head` (or `tray.init()` in another program), "
                                  "or pass its address (HOST:PORT)")
        return found[0]["address"], _config.get("cluster_token") or found[0]["token"]
    address = normalize(address)
    token = _config.get("cluster_token")
    if token is None:
        match = next((s for s in joinable() if s["address"] == address), None)
        if match is None:
            raise ConnectionError(f"no token for the tray cluster at {address}: set {_config.env_name('cluster_token')}"
                                  f" to the token `tray start --head` printed")
        token = match["token"]
    return address, token


def joinable() -> list[dict[str, Any]]:
    """The live sessions a driver may join, in the order ``"auto"`` prefers them: heads
    (newest first), then nodes hosted by drivers (newest first)."""
    return find_sessions("head") + find_sessions("driver")


def local_ip_toward(address: str) -> str:
    """The address of this machine that reaches ``address`` (loopback for loopback)."""
    host = address.partition("://")[2].rpartition(":")[0].strip("[]")
    if host in ("127.0.0.1", "localhost", "::1", ""):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def unreachable(address: str | None, exc: BaseException) -> str:
    """Why a node at ``address`` could not be joined, in words a user can act on."""
    if "wrong cluster token" in str(exc) or "does not know the cluster token" in str(exc):
        return (f"the tray node at {address} refused us: wrong cluster token; set {_config.env_name('cluster_token')} "
                f"to the token `tray start --head` printed")
    return f"cannot reach a tray node at {address}: {exc}"
