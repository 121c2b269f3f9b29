"""Fixtures for Serve tests: one local node per module, Serve's proxy on a free loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import tray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeEnv:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def serve_env() -> Iterator[ServeEnv]:
    """``tray.init`` and ``serve.start`` on a free port once per module; everything stopped at its end."""
    from tray import serve

    tray.init(num_cpus=8)
    port = free_port()
    serve.start(http_options={"port": port})
    try:
        yield ServeEnv(port)
    finally:
        serve.shutdown()
        tray.shutdown()


@pytest.fixture
def env(serve_env: ServeEnv) -> Iterator[ServeEnv]:
    """Per test: the module's Serve, with every application deleted afterwards."""
    from tray import serve

    yield serve_env
    for name in list(serve.status().applications):
        serve.delete(name)
