"""Real nodes for the dashboard's tests: ``tray start --block`` subprocesses, and the URLs
they print (a module of its own, with a name no other test folder uses, so test modules
import it directly)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(*args: str, token: str, want: tuple[str, ...]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A node (``tray start --block *args``) in the foreground, and the URLs it printed: for each
    of ``want`` ("dashboard", "metrics"), what its ``tray: NAME at URL`` line said."""
    env = {**os.environ, "TRAY_CLUSTER_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "tray", "start", "--block", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    while set(want) - set(urls):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the node exited before it was up (code {proc.wait()})")
        for name in want:
            if f"tray: {name} at " in line:
                urls[name] = line.strip().rpartition(" ")[2]
        assert time.monotonic() < deadline, "the node took too long to start"
    return proc, urls


def start_head(num_cpus: int = 2) -> tuple[subprocess.Popen[str], str, str, str]:
    """``(process, dashboard url, token, head address)`` of a new head in the foreground."""
    proc, url, token, address, _metrics = start_head_with_metrics(num_cpus)
    return proc, url, token, address


def start_head_with_metrics(num_cpus: int = 2) -> tuple[subprocess.Popen[str], str, str, str, str]:
    """``(process, dashboard url, token, head address, the head's own metrics URL)``."""
    token = secrets.token_hex(16)
    port = free_port()
    proc, urls = start_node("--head", "--port", str(port), "--num-cpus", str(num_cpus), "--dashboard-port", "0",
                            token=token, want=("dashboard", "metrics"))
    return proc, urls["dashboard"], token, f"127.0.0.1:{port}", urls["metrics"]


def stop_head(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
