"""The proxy on hypercorn's trio worker (``http_options={"server": "hypercorn"}``), with a request timeout."""

from __future__ import annotations

import httpx
from conftest import free_port
from serve_helpers import ws_roundtrip
from test_serve_http import Plain, Shop

import tray
from tray import serve


def test_hypercorn_proxy_serves_http_and_websockets() -> None:
    tray.init(num_cpus=4)
    port = free_port()
    try:
        serve.start(http_options={"port": port, "server": "hypercorn", "request_timeout_s": 2})
        serve.run(Plain.bind(), name="plain", route_prefix="/plain")
        serve.run(Shop.bind(0.0), name="shop", route_prefix="/shop")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert c.get("/plain").text == "plain text"
            assert c.get("/shop/items/3").json() == {"item_id": 3, "q": None}
        assert ws_roundtrip(port, "/shop/ws", ["x", "bye"]) == ["echo x"]

        @serve.deployment
        class Stuck:
            async def __call__(self, request) -> str:
                import asyncio

                await asyncio.sleep(float(request.query_params["s"]))
                return "late"

        serve.run(Stuck.bind(), name="stuck", route_prefix="/stuck")
        r = httpx.get(f"http://127.0.0.1:{port}/stuck", params={"s": "10"}, timeout=30)
        assert r.status_code == 408 and "request_timeout_s" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/stuck", params={"s": "0"}, timeout=30).text == "late"
    finally:
        serve.shutdown()
        tray.shutdown()
