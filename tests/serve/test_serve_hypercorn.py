"""The proxy on hypercorn's trio worker (``http_options={"server": "hypercorn"}``)."""

from __future__ import annotations

import httpx

import tray
from conftest import free_port
from serve_helpers import ws_roundtrip
from test_serve_http import Plain, Shop
from tray import serve


def test_hypercorn_proxy_serves_http_and_websockets() -> None:
    tray.init(num_cpus=4)
    port = free_port()
    try:
        serve.start(http_options={"port": port, "server": "hypercorn"})
        serve.run(Plain.bind(), name="plain", route_prefix="/plain")
        serve.run(Shop.bind(0.0), name="shop", route_prefix="/shop")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert c.get("/plain").text == "plain text"
            assert c.get("/shop/items/3").json() == {"item_id": 3, "q": None}
        assert ws_roundtrip(port, "/shop/ws", ["x", "bye"]) == ["echo x"]
    finally:
        serve.shutdown()
        tray.shutdown()
