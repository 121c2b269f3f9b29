"""The dashboard's place in the head node's supervision tree: ``DashboardProcess``.

The head node starts it from the string ``"tray.dashboard._head:DashboardProcess"`` (the
cluster layer never imports the dashboard). Starting costs a bound socket and nothing
else: the web server (Starlette on hypercorn, a driver of the cluster) runs in a process
of its own, started when the first connection arrives on that socket, which it inherits.
So a ``tray.init()`` that nobody browses pays well under a millisecond and no memory, and
the server's imports never slow the node. The process exits when its stdin closes (this
actor stopping, or the head dying); if it dies, the next connection starts a new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys

import trio

import tray

log = logging.getLogger("tray.dashboard")

DEFAULT_PORT = 8265
URL_FILE = "dashboard.json"
GRACE_S = 3.0
RESTART_PAUSE_S = 1.0  # after a server that died young, before the next one


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``host:port``; ``port=None``: 8265, or any free port if taken (as Ray)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in ([DEFAULT_PORT, 0] if port is None else [port]):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if port is not None:
                raise OSError(f"the dashboard cannot listen on {host}:{port}: {exc.strerror}") from None
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise OSError(f"the dashboard found no free port on {host}")


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class DashboardProcess(tray.Actor):
    """Owns the dashboard's socket and, once someone connects, its server process.

    ``node_address``: where the server joins the cluster as a driver; ``env``: its
    environment (the node's workers', with the cluster token); ``session_dir``: the
    head's session directory (job logs go to its ``logs``; ``dashboard.json`` tells local
    clients the URL).
    """

    def __init__(self, node_address: str, env: dict[str, str], session_dir: str | None,
                 host: str = "127.0.0.1", port: int | None = None) -> None:
        self.node_address = node_address
        self.env = env
        self.session_dir = session_dir
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.proc: trio.Process | None = None

    async def on_start(self) -> None:
        if self.session_dir is not None:
            path = os.path.join(self.session_dir, URL_FILE)
            with open(path, "w") as f:
                json.dump({"url": self.url, "pid": os.getpid()}, f)
        self.start_soon(self._serve)

    def get_url(self) -> str:
        return self.url

    def server_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def _serve(self) -> None:
        """Start the server when a connection waits; again if it dies."""
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            started = trio.current_time()
            env = {k: v for k, v in self.env.items() if k not in ("TRAY_NAMESPACE", "TRAY_JOB_ID")}
            env["TRAY_DASHBOARD_URL"] = self.url
            env.setdefault("MALLOC_ARENA_MAX", "2")  # glibc: not an arena per thread (the server's threads idle)
            cmd = [sys.executable, "-m", "tray.dashboard", "--fd", str(self.sock.fileno()),
                   "--address", self.node_address, "--url", self.url]
            if self.session_dir is not None:
                cmd += ["--session-dir", self.session_dir]
            self.proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.PIPE, env=env,
                                                         pass_fds=(self.sock.fileno(),))
            code = await self.proc.wait()
            log.warning("the dashboard server (pid %s) exited with %s", self.proc.pid, code)
            if trio.current_time() - started < 10:
                await trio.sleep(RESTART_PAUSE_S)

    async def on_stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                if proc.stdin is not None:
                    await proc.stdin.aclose()
            with trio.move_on_after(GRACE_S):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        self.sock.close()
        if self.session_dir is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.session_dir, URL_FILE))


