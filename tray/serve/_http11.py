"""A lean HTTP/1.1 and WebSocket server for ASGI apps, on trio: the proxy's front door.

Why not only hypercorn: the proxy's CPU is Serve's bottleneck (one process parses every
request), and hypercorn's general machinery (h11, a task per request, its ASGI wrapper) costs
several times what the request itself does. This server keeps to what a proxy needs, done
directly: keep-alive and pipelined requests, Content-Length and chunked bodies both ways,
``Expect: 100-continue``, HTTP/1.0, HEAD, limits on head size (431) and malformed requests
(400), an idle keep-alive timeout, and WebSocket upgrades (handshake and frames by wsproto).
``http_options={"server": "hypercorn"}`` runs hypercorn's trio worker instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

import trio

log = logging.getLogger("tray.serve")

MAX_HEAD = 64 * 1024
READ = 65536
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

_REASONS = {200: b"OK", 201: b"Created", 204: b"No Content", 301: b"Moved Permanently", 302: b"Found",
            304: b"Not Modified", 307: b"Temporary Redirect", 400: b"Bad Request", 401: b"Unauthorized",
            403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed", 413: b"Payload Too Large",
            422: b"Unprocessable Entity", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
            503: b"Service Unavailable", 505: b"HTTP Version Not Supported"}


class _BadRequest(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def _status_line(version: bytes, status: int) -> bytes:
    return b"HTTP/%s %d %s\r\n" % (version, status, _REASONS.get(status, b"Status"))


class _Conn:
    def __init__(self, stream: trio.SocketStream, app: ASGIApp, server: tuple[str, int], keep_alive_s: float) -> None:
        self.stream = stream
        self.app = app
        self.server = server
        self.keep_alive_s = keep_alive_s
        self.buf = bytearray()
        try:
            peer = stream.socket.getpeername()
            self.client: tuple[str, int] | None = (peer[0], peer[1])
        except OSError:
            self.client = None

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(READ)
        if not data:
            return False
        self.buf += data
        return True

    async def run(self) -> None:
        while True:
            if not self.buf:
                with trio.move_on_after(self.keep_alive_s) as idle:
                    if not await self._fill():
                        return
                if idle.cancelled_caught:
                    return
            try:
                keep = await self._one()
            except _BadRequest as exc:
                body = str(exc).encode()
                await self.stream.send_all(_status_line(b"1.1", exc.status) + b"content-type: text/plain\r\n"
                                           b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                return
            if not keep:
                return

    async def _head(self) -> bytes | None:
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[:idx])
                del self.buf[:idx + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise _BadRequest(431, "request head too large")
            if not await self._fill():
                return None

    async def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self._fill():
                raise _BadRequest(400, "the body ended early")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while (idx := self.buf.find(b"\r\n")) < 0:
                if len(self.buf) > MAX_HEAD or not await self._fill():
                    raise _BadRequest(400, "bad chunked body")
            size_line = bytes(self.buf[:idx]).split(b";")[0].strip()
            del self.buf[:idx + 2]
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadRequest(400, "bad chunk size") from None
            if size == 0:
                while (idx := self.buf.find(b"\r\n")) != 0:  # trailers, up to the empty line
                    if idx > 0:
                        del self.buf[:idx + 2]
                    elif not await self._fill():
                        raise _BadRequest(400, "bad chunked body")
                del self.buf[:2]
                return b"".join(parts)
            parts.append(await self._exactly(size))
            if await self._exactly(2) != b"\r\n":
                raise _BadRequest(400, "bad chunk terminator")

    async def _one(self) -> bool:
        head = await self._head()
        if head is None:
            return False
        lines = head.split(b"\r\n")
        try:
            method, target, proto = lines[0].split(b" ")
        except ValueError:
            raise _BadRequest(400, "bad request line") from None
        if proto == b"HTTP/1.1":
            version = b"1.1"
        elif proto == b"HTTP/1.0":
            version = b"1.0"
        else:
            raise _BadRequest(505 if proto.startswith(b"HTTP/") else 400, "unsupported HTTP version")
        headers = []
        length: int | None = None
        chunked = False
        conn_hdr = b""
        upgrade = b""
        expect = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "bad header line")
            name = name.lower()
            value = value.strip()
            headers.append((name, value))
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise _BadRequest(400, "bad content-length") from None
                if length < 0:
                    raise _BadRequest(400, "bad content-length")
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                conn_hdr = value.lower()
            elif name == b"upgrade":
                upgrade = value.lower()
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        keep = (b"close" not in conn_hdr) if version == b"1.1" else (b"keep-alive" in conn_hdr)
        raw_path, _, query = target.partition(b"?")
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": version.decode(),
            "method": method.decode("latin-1"), "scheme": "http",
            "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"), "raw_path": raw_path,
            "query_string": query, "root_path": "", "headers": headers, "client": self.client,
            "server": self.server,
        }
        if upgrade == b"websocket" and method == b"GET":
            scope["type"] = "websocket"
            scope["scheme"] = "ws"
            await _websocket(self, head, scope)
            return False
        if expect and (chunked or length):
            await self.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await self._chunked() if chunked else (await self._exactly(length) if length else b"")
        return await self._respond(scope, body, version, keep, method == b"HEAD")

    async def _respond(self, scope: dict[str, Any], body: bytes, version: bytes, keep: bool, head_only: bool) -> bool:
        state: dict[str, Any] = {"start": None, "chunked": False, "done": False, "sent_head": False}
        finished = trio.Event()
        got_body = False
        stream = self.stream

        async def receive() -> dict[str, Any]:
            nonlocal got_body
            if not got_body:
                got_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, Any]) -> None:
            kind = msg["type"]
            if kind == "http.response.start":
                if state["start"] is not None:
                    raise RuntimeError("http.response.start sent twice")
                state["start"] = msg
                return
            if kind != "http.response.body":
                return
            if state["start"] is None:
                raise RuntimeError("http.response.body before http.response.start")
            if state["done"]:
                return
            chunk = msg.get("body", b"")
            more = msg.get("more_body", False)
            out = b""
            if not state["sent_head"]:
                start = state["start"]
                hdrs = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", ())]
                has_len = any(k == b"content-length" for k, _ in hdrs)
                lines = [_status_line(version, int(start["status"]))]
                for k, v in hdrs:
                    lines.append(k + b": " + v + b"\r\n")
                if not has_len:
                    if not more:
                        lines.append(b"content-length: %d\r\n" % len(chunk))
                    elif version == b"1.1":
                        lines.append(b"transfer-encoding: chunked\r\n")
                        state["chunked"] = True
                    else:
                        nonlocal keep
                        keep = False
                if not keep:
                    lines.append(b"connection: close\r\n")
                lines.append(b"\r\n")
                out = b"".join(lines)
                state["sent_head"] = True
            if not head_only:
                if state["chunked"]:
                    if chunk:
                        out += b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    if not more:
                        out += b"0\r\n\r\n"
                else:
                    out += chunk
            if out:
                await stream.send_all(out)
            if not more:
                state["done"] = True
                finished.set()

        try:
            await self.app(scope, receive, send)
        except Exception:  # noqa: BLE001 - a 500 if nothing was sent yet, else the connection closes
            log.exception("serve proxy: the request failed")
            if not state["sent_head"]:
                await stream.send_all(_status_line(version, 500) + b"content-length: 0\r\nconnection: close\r\n\r\n")
            return False
        finally:
            finished.set()
        if not state["done"]:
            if not state["sent_head"]:
                await stream.send_all(_status_line(version, 500) + b"content-length: 0\r\nconnection: close\r\n\r\n")
            return False
        return keep


async def _websocket(conn: _Conn, head: bytes, scope: dict[str, Any]) -> None:
    """Run a WebSocket: wsproto does the handshake and frames, the app sees ASGI websocket events."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        Ping,
        RejectConnection,
        Request,
        TextMessage,
    )

    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(head + b"\r\n\r\n" + bytes(conn.buf))
    conn.buf.clear()
    request = next((e for e in ws.events() if isinstance(e, Request)), None)
    if request is None:
        raise _BadRequest(400, "bad WebSocket handshake")
    scope["subprotocols"] = list(request.subprotocols)
    inbox_send, inbox_recv = trio.open_memory_channel[dict[str, Any]](256)
    inbox_send.send_nowait({"type": "websocket.connect"})
    state = {"accepted": False, "closed": False}
    stream = conn.stream

    async def reader() -> None:
        parts: list[Any] = []
        while True:
            data = await stream.receive_some(READ)
            ws.receive_data(data or None)
            for ev in ws.events():
                if isinstance(ev, (TextMessage, BytesMessage)):
                    parts.append(ev.data)
                    if ev.message_finished:
                        whole = "".join(parts) if isinstance(ev, TextMessage) else b"".join(parts)
                        parts = []
                        key = "text" if isinstance(ev, TextMessage) else "bytes"
                        await inbox_send.send({"type": "websocket.receive", key: whole})
                elif isinstance(ev, Ping):
                    await stream.send_all(ws.send(ev.response()))
                elif isinstance(ev, CloseConnection):
                    if not state["closed"]:
                        state["closed"] = True
                        try:
                            await stream.send_all(ws.send(ev.response()))
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass
                    await inbox_send.send({"type": "websocket.disconnect", "code": ev.code})
                    return
            if not data:
                await inbox_send.send({"type": "websocket.disconnect", "code": 1006})
                return

    async def send(msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "websocket.accept":
            hdrs = [(bytes(k), bytes(v)) for k, v in msg.get("headers", ())]
            await stream.send_all(ws.send(AcceptConnection(subprotocol=msg.get("subprotocol"), extra_headers=hdrs)))
            state["accepted"] = True
            nursery.start_soon(reader)
        elif kind == "websocket.send":
            if state["closed"]:
                return
            if msg.get("text") is not None:
                await stream.send_all(ws.send(TextMessage(data=msg["text"])))
            else:
                await stream.send_all(ws.send(BytesMessage(data=msg.get("bytes") or b"")))
        elif kind == "websocket.close":
            if not state["accepted"]:
                await stream.send_all(ws.send(RejectConnection(status_code=403)))
            elif not state["closed"]:
                state["closed"] = True
                await stream.send_all(ws.send(CloseConnection(code=msg.get("code", 1000), reason=msg.get("reason"))))
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        try:
            await conn.app(scope, inbox_recv.receive, send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if not state["accepted"] and not state["closed"]:
                try:
                    await stream.send_all(ws.send(RejectConnection(status_code=500)))
                except Exception:  # noqa: BLE001
                    pass
            nursery.cancel_scope.cancel()


async def serve(app: ASGIApp, host: str, port: int, shutdown: trio.Event, *, keep_alive_s: float = 5.0,
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``host:port`` until ``shutdown`` is set; reports the bound port when listening."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]

    async def handle(stream: trio.SocketStream) -> None:
        conn = _Conn(stream, app, (host, bound), keep_alive_s)
        try:
            await conn.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - one bad connection must not stop the server
            log.exception("serve proxy: a connection failed")
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle, listeners)
        task_status.started(bound)
        await shutdown.wait()
        nursery.cancel_scope.cancel()
