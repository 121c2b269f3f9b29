"""The proxy's HTTP/1.1 server on its own (no cluster): framing, keep-alive, limits, errors."""

from __future__ import annotations

import json

import trio

from tray.serve import _http11


async def echo_app(scope, receive, send) -> None:
    msg = await receive()
    body = json.dumps({"method": scope["method"], "path": scope["path"], "qs": scope["query_string"].decode(),
                       "body": msg["body"].decode(), "v": scope["http_version"]}).encode()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"ab", b"", b"cd"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": body})


async def exchange(raw: bytes, reads: int = 1) -> bytes:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: _http11.serve(echo_app, "127.0.0.1", 0, stop,
                                                                     keep_alive_s=2, task_status=task_status))
        s = await trio.open_tcp_stream("127.0.0.1", port)
        await s.send_all(raw)
        out = b""
        with trio.move_on_after(5):
            while True:
                data = await s.receive_some(65536)
                if not data:
                    break
                out += data
                if out.count(b"HTTP/1.") >= reads and (b"0\r\n\r\n" in out or b"}" in out or b"\r\n\r\n" in out
                                                       and reads == 0):
                    if out.count(b"HTTP/1.1 20") + out.count(b"HTTP/1.0 20") >= reads:
                        break
        await s.aclose()
        stop.set()
    return out


def run(raw: bytes, reads: int = 1) -> bytes:
    return trio.run(exchange, raw, reads)


def test_content_length_body_query_and_percent_path() -> None:
    out = run(b"POST /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created") and b"x-a: 1" in head and b"content-length:" in head
    assert json.loads(body) == {"method": "POST", "path": "/a b", "qs": "x=1", "body": "hello", "v": "1.1"}


def test_chunked_request_and_expect_continue() -> None:
    out = run(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
              b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201")
    assert json.loads(out.rpartition(b"\r\n\r\n")[2])["body"] == "abcde"


def test_pipelined_keep_alive_requests() -> None:
    out = run(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", reads=2)
    assert out.count(b"HTTP/1.1 201") == 2 and b'"/1"' in out and b'"/2"' in out
    assert out.index(b'"/1"') < out.index(b'"/2"')


def test_streamed_response_is_chunked() -> None:
    out = run(b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
    assert b"transfer-encoding: chunked" in out
    assert out.endswith(b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")


def test_http10_closes_and_head_has_no_body() -> None:
    out = run(b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 201") and b"connection: close" in out
    out = run(b"HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 201") and out.endswith(b"\r\n\r\n")


def test_bad_requests_get_4xx_and_app_errors_500() -> None:
    assert run(b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert run(b"GET / HTTP/1.1\r\nbad header\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert run(b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505")
    assert run(b"GET / HTTP/1.1\r\nX: " + b"a" * (70 * 1024)).startswith(b"HTTP/1.1 431")
    assert run(b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n").startswith(b"HTTP/1.1 500")
