"""HTTP through the proxy: real httpx clients against the real server on loopback."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import StreamingResponse

from tray import serve

api = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@serve.deployment
@serve.ingress(api)
class Shop:
    def __init__(self, tax: float) -> None:
        self.tax = tax

    @api.get("/items/{item_id}")
    def get_item(self, item_id: int, q: str | None = None) -> dict:
        return {"item_id": item_id, "q": q}

    @api.post("/items")
    async def create(self, item: Item) -> dict:
        return {"name": item.name, "total": round(item.price * (1 + self.tax), 2)}

    @api.websocket("/ws")
    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        while True:
            text = await ws.receive_text()
            if text == "bye":
                await ws.close()
                return
            await ws.send_text(f"echo {text}")


@serve.deployment
class Plain:
    async def __call__(self, request: Request) -> object:
        if request.url.path.endswith("/json"):
            return {"path": request.url.path, "q": dict(request.query_params)}
        if request.method == "POST":
            return (await request.body()).decode()[::-1]
        return "plain text"


@serve.deployment
class Streamer:
    def __call__(self, request: Request) -> StreamingResponse:
        n = int(request.query_params.get("n", "3"))

        async def gen():
            for i in range(n):
                yield f"chunk{i}\n"

        return StreamingResponse(gen(), media_type="text/plain")


def test_plain_call_text_json_and_body(env) -> None:
    serve.run(Plain.bind(), name="plain", route_prefix="/plain")
    with httpx.Client(base_url=env.url, timeout=30) as c:
        r = c.get("/plain")
        assert r.status_code == 200 and r.text == "plain text"
        assert r.headers["content-type"].startswith("text/plain")
        r = c.get("/plain/json", params={"a": "1"})
        assert r.json() == {"path": "/plain/json", "q": {"a": "1"}}
        assert c.post("/plain", content=b"abc").text == "cba"
        assert c.get("/nothing-here").status_code == 404


def test_fastapi_ingress_params_bodies_docs(env) -> None:
    serve.run(Shop.bind(0.1), name="shop", route_prefix="/shop")
    with httpx.Client(base_url=env.url, timeout=30) as c:
        assert c.get("/shop/items/7", params={"q": "x"}).json() == {"item_id": 7, "q": "x"}
        assert c.get("/shop/items/notanint").status_code == 422
        assert c.post("/shop/items", json={"name": "pen", "price": 10}).json() == {"name": "pen", "total": 11.0}
        schema = c.get("/shop/openapi.json").json()
        assert "/items/{item_id}" in schema["paths"] and "/items" in schema["paths"]
        docs = c.get("/shop/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_two_apps_distinct_prefixes_and_routes_endpoint(env) -> None:
    serve.run(Plain.bind(), name="a", route_prefix="/a")
    serve.run(Plain.options(name="Plain2").bind(), name="b", route_prefix="/b")
    with httpx.Client(base_url=env.url, timeout=30) as c:
        assert c.get("/a/json").json()["path"] == "/a/json"
        assert c.get("/b/json").json()["path"] == "/b/json"
        assert c.get("/-/routes").json() == {"/a": "a", "/b": "b"}
        assert c.get("/ab").status_code == 404
    with pytest.raises(ValueError, match="already used"):
        serve.run(Plain.bind(), name="c", route_prefix="/a")


def test_streaming_response(env) -> None:
    serve.run(Streamer.bind(), name="stream", route_prefix="/stream")
    with httpx.Client(base_url=env.url, timeout=30) as c:
        with c.stream("GET", "/stream", params={"n": "50"}) as r:
            assert r.status_code == 200
            text = "".join(r.iter_text())
    assert text == "".join(f"chunk{i}\n" for i in range(50))


def test_websocket_through_fastapi(env) -> None:
    serve.run(Shop.bind(0.0), name="shopws", route_prefix="/w")
    from serve_helpers import ws_roundtrip

    replies = ws_roundtrip(env.port, "/w/ws", ["a", "b", "bye"])
    assert replies == ["echo a", "echo b"]


def test_handler_error_is_500_and_server_keeps_serving(env) -> None:
    @serve.deployment
    def boom(request: Request) -> str:
        if request.query_params.get("fail"):
            raise ValueError("kaboom")
        return "fine"

    serve.run(boom.bind(), name="boom", route_prefix="/boom")
    with httpx.Client(base_url=env.url, timeout=30) as c:
        r = c.get("/boom", params={"fail": "1"})
        assert r.status_code == 500 and "kaboom" in r.text
        assert c.get("/boom").text == "fine"


def test_backpressure_gives_503(env) -> None:
    import threading

    @serve.deployment(max_ongoing_requests=1, max_queued_requests=1)
    class Slow:
        async def __call__(self, request: Request) -> str:
            import asyncio

            await asyncio.sleep(float(request.query_params.get("s", "0")))
            return "done"

    serve.run(Slow.bind(), name="slow", route_prefix="/slow")
    codes: list[int] = []

    def hit() -> None:
        codes.append(httpx.get(f"{env.url}/slow", params={"s": "2"}, timeout=60).status_code)

    threads = [threading.Thread(target=hit) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes).count(200) >= 2 and 503 in codes, codes
    assert json.loads(json.dumps(codes))  # the codes are plain ints
