"""Every node's own metrics port, for Prometheus to scrape directly: ``NodeMetrics``.

Each node (the head and the others) starts it from the string
``"tray.dashboard._node_metrics:NodeMetrics"`` (the cluster layer never imports it) with
the host and port to listen on (``tray start --metrics-export-port``, Ray's flag; default:
a free port). It serves ``GET /metrics`` in Prometheus' text format, behind the cluster
token like every tray port: this node's machine (CPU, memory), its processes (the node's
and its workers': RSS, CPU seconds), its object store, its resources, the messages its
system actors received from other processes (RPC rates), and the application metrics of
the processes on this node. It records its URL in the cluster's KV table, where the
dashboard finds every node's (``/api/prometheus/sd``, Prometheus' HTTP service discovery).

Until someone scrapes, it costs a bound socket: the exporter imports psutil and
prometheus_client on the first request, and renders in a thread so the node's loop, which
also runs its scheduler, is not held.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import time
from typing import Any

import trio

import tray

log = logging.getLogger("tray.dashboard")

KV_NAMESPACE = "_tray_metrics"  # tray.util.metrics' namespace: the app metrics are there too
URL_PREFIX = "node:"  # KV key: node:<node_id> -> this node's metrics URL
MAX_REQUEST = 16 * 1024
READ_TIMEOUT_S = 10.0
REGISTER_EVERY_S = 0.5  # while the node has not joined its cluster yet


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"the node's metrics exporter cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def parse_request(data: bytes) -> tuple[str, str, dict[str, str]]:
    """``(method, path, headers)`` of an HTTP/1.x request head; ValueError if it is not one."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"not an HTTP request line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1].split("?", 1)[0], headers


def authorized(headers: dict[str, str], token: str) -> bool:
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-tray-token")
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def response(status: str, body: bytes, ctype: str = "text/plain; charset=utf-8", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n").encode() + body


class NodeMetrics(tray.Actor):
    """Owns the node's metrics socket and answers scrapes of it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        bound_host, bound_port = self.sock.getsockname()[:2]
        self.url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"
        self.control: Any = None
        self.cpu_primed = False

    async def on_start(self) -> None:
        self.start_soon(self._serve)
        self.start_soon(self._register)

    def get_url(self) -> str:
        return self.url

    async def _register(self) -> None:
        """Record this URL in the KV table once the node knows its control store."""
        while True:
            state = await tray.lowlevel.node_state(self.system)
            if state["control"] is not None:
                self.control = state["control"]
                try:
                    await self.control.kv_put.ask(KV_NAMESPACE, URL_PREFIX + state["node_id"], self.url.encode(), True)
                    return
                except Exception as exc:  # noqa: BLE001 - the head is away: try again
                    log.debug("registering the metrics URL failed: %r", exc)
            await trio.sleep(REGISTER_EVERY_S)

    async def _serve(self) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self.sock))
        await trio.serve_listeners(self._handle, [listener])

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                with trio.fail_after(READ_TIMEOUT_S):
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = await stream.receive_some(4096)
                        if not chunk:
                            return
                        data += chunk
                        if len(data) > MAX_REQUEST:
                            await stream.send_all(response("431 Request Header Fields Too Large", b"too large\n"))
                            return
                    await stream.send_all(await self._answer(data))
            except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            except Exception as exc:  # noqa: BLE001 - one bad connection never takes the exporter down
                log.warning("the node's metrics port: a request failed: %r", exc)

    async def _answer(self, data: bytes) -> bytes:
        try:
            method, path, headers = parse_request(data)
        except ValueError as exc:
            return response("400 Bad Request", f"{exc}\n".encode())
        if not authorized(headers, self.system.token or ""):
            return response("401 Unauthorized", b"send the cluster token as Authorization: Bearer TOKEN\n",
                            extra='www-authenticate: Bearer realm="tray"\r\n')
        if method != "GET":
            return response("405 Method Not Allowed", b"GET only\n", extra="allow: GET\r\n")
        if path not in ("/", "/metrics"):
            return response("404 Not Found", b"this port serves /metrics\n")
        try:
            body = await self.render()
        except Exception as exc:  # noqa: BLE001 - a scrape that fails says why; the next one tries again
            log.warning("the node's metrics failed to render: %r", exc)
            return response("500 Internal Server Error", f"{type(exc).__name__}: {exc}\n".encode())
        return response("200 OK", body, "text/plain; version=0.0.4; charset=utf-8")

    async def render(self) -> bytes:
        """This node's metrics in Prometheus' text format."""
        state = await tray.lowlevel.node_state(self.system)
        records = await self._app_records(state)
        return await trio.to_thread.run_sync(_render, state, records)

    async def _app_records(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The application metrics the processes of this node published (``tray.util.metrics``)."""
        from ..util import metrics as app_metrics

        control = state["control"]
        if control is None:
            return []
        out = []
        with trio.move_on_after(READ_TIMEOUT_S):
            prefix = f"{app_metrics.KEY_PREFIX}{state['node_id']}:"
            for key in await control.kv_keys.ask(app_metrics.KV_NAMESPACE, prefix):
                raw = await control.kv_get.ask(app_metrics.KV_NAMESPACE, key)
                if raw is not None:
                    record = json.loads(raw)
                    if time.time() - record["ts"] <= 3 * app_metrics.HEARTBEAT_S:
                        out.append(record)
        return out

    async def on_stop(self) -> None:
        self.sock.close()
        if self.control is not None:
            with trio.move_on_after(1.0), contextlib.suppress(Exception):
                await self.control.kv_del.ask(KV_NAMESPACE, URL_PREFIX + self.system.uid, False)


def _render(state: dict[str, Any], records: list[dict[str, Any]]) -> bytes:
    from . import _metrics

    return _metrics.render(_metrics.node_families(state, _metrics.host_sample(state["pids"]))
                           + _metrics.app_families(_metrics.merge(records)))
