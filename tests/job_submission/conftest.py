"""A real head (``tray start --head --block`` as a subprocess) with its dashboard, and this
test process as a driver of it, for the whole module."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import tray

START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(num_cpus: int = 2) -> tuple[subprocess.Popen[str], str, str, str]:
    """``(process, dashboard url, token, head address)`` of a new head in the foreground."""
    token = secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "TRAY_CLUSTER_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "tray", "start", "--head", "--block", "--port", str(port),
                             "--num-cpus", str(num_cpus), "--dashboard-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    url = None
    assert proc.stdout is not None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the head exited before its dashboard was up (code {proc.wait()})")
        if "dashboard at " in line:
            url = line.strip().rpartition(" ")[2]
        assert time.monotonic() < deadline, "the head took too long to start"
    return proc, url, token, f"127.0.0.1:{port}"


def stop_head(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def head() -> Iterator[dict[str, Any]]:
    proc, url, token, address = start_head()
    os.environ["TRAY_CLUSTER_TOKEN"] = token
    try:
        tray.init(address=address)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert client.get("/api/version").status_code == 200  # the server process is up before any test
        yield {"url": url, "token": token, "address": address, "http": client, "proc": proc}
        client.close()
    finally:
        tray.shutdown()
        os.environ.pop("TRAY_CLUSTER_TOKEN", None)
        stop_head(proc)
