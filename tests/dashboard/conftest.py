"""A real head (``tray start --head --block`` as a subprocess) with its dashboard, and this
test process as a driver of it, for the whole module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dashboard_nodes import start_head_with_metrics, stop_head

import tray


@pytest.fixture(scope="module")
def head() -> Iterator[dict[str, Any]]:
    proc, url, token, address, metrics_url = start_head_with_metrics()
    os.environ["TRAY_CLUSTER_TOKEN"] = token
    try:
        tray.init(address=address)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert client.get("/api/version").status_code == 200  # the server process is up before any test
        yield {"url": url, "token": token, "address": address, "http": client, "proc": proc,
               "metrics_url": metrics_url}
        client.close()
    finally:
        tray.shutdown()
        os.environ.pop("TRAY_CLUSTER_TOKEN", None)
        stop_head(proc)
