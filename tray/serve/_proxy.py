"""The HTTP proxy: an ASGI server on trio (tray's lean HTTP/1.1 server, or hypercorn's trio
worker), run in the process's router loop, in front of the routers.

It matches a request's path to an application's route prefix (longest first), reads the body,
lets the ingress deployment's router pick a replica and hands the replica the ASGI scope and
body in one actor call; the reply is the whole response, or its start and a session to pull
the rest of a stream from. WebSockets are a session whose messages go both ways. 503 when the
deployment's queue is full or it has no replica, 404 when no route matches, 500 when the
replica failed.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import trio

from . import _routing
from ._router import DEAD_ERRORS, RouterLoop, router_loop
from .config import HTTPOptions
from .exceptions import BackPressureError, DeploymentUnavailableError

log = logging.getLogger("tray.serve")

_SCOPE_KEYS = ("type", "http_version", "method", "scheme", "path", "raw_path", "query_string", "headers",
               "client", "server", "subprotocols")


class _no_deadline:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _simple(send: Any, status: int, text: str, content_type: bytes = b"text/plain; charset=utf-8") -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class ProxyApp:
    """The proxy's own ASGI app (runs in the router loop)."""

    def __init__(self, loop: RouterLoop, root_path: str = "", request_timeout_s: float | None = None) -> None:
        self.loop = loop
        self.root_path = root_path
        self.request_timeout_s = request_timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if self.loop.routes_ready is not None and not self.loop.routes_ready.is_set():
            with trio.move_on_after(10):
                await self.loop.routes_ready.wait()
        if kind == "http" and path.startswith("/-/"):
            if path == "/-/healthz":
                return await _simple(send, 200, "success")
            if path == "/-/routes":
                names = {p: a for p, (a, _d) in self.loop.routes.items()}
                return await _simple(send, 200, json.dumps(names), b"application/json")
        routes = self.loop.routes
        prefix = _routing.match_route(routes, path)
        if prefix is None:
            if kind == "http":
                return await _simple(send, 404, f"Path '{path}' not found. Ping http://.../-/routes for available "
                                                "routes.")
            await send({"type": "websocket.close", "code": 1000})
            return
        app_name, ingress = routes[prefix]
        fwd = {k: scope[k] for k in _SCOPE_KEYS if k in scope}
        fwd["asgi"] = {"version": "3.0", "spec_version": "2.3"}
        fwd["root_path"] = self.root_path + (prefix if prefix != "/" else "")
        fwd["path"] = self.root_path + path
        fwd["raw_path"] = fwd["path"].encode()
        fwd["headers"] = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
        fwd["state"] = {}
        model = ""
        for k, v in fwd["headers"]:
            if k == b"serve_multiplexed_model_id":
                model = v.decode()
        meta = (os.urandom(8).hex(), model)
        router = self.loop.router(app_name, ingress)
        if kind == "websocket":
            return await self._websocket(router, fwd, meta, receive, send)
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body", False):
                break
        try:
            rid = await router.assign(model)
        except BackPressureError as exc:
            return await _simple(send, 503, str(exc))
        except DeploymentUnavailableError as exc:
            return await _simple(send, 503, str(exc))
        replica = router.replicas[rid]
        timeout = self.request_timeout_s
        try:
            with trio.fail_after(timeout) if timeout else _no_deadline():
                await self._forward(replica, meta, fwd, body, send)
        except trio.TooSlowError:
            await self._fail(send, 408, f"the request took longer than request_timeout_s ({timeout} s)")
        except DEAD_ERRORS as exc:
            router.dead(rid)
            await self._fail(send, 500, f"the replica serving this request died: {exc}")
        except Exception as exc:  # noqa: BLE001 - a replica error or a client that went away
            await self._fail(send, 500, f"{type(exc).__name__}: {exc}")
        finally:
            router.release(rid)

    async def _forward(self, replica: Any, meta: tuple[str, str], fwd: dict[str, Any], body: bytes, send: Any) -> None:
        """One HTTP request's replica calls: the start (often the whole response), then pulls."""
        sid = 0
        try:
            msgs, sid = await replica.asgi_start.remote(meta, fwd, body)
            for m in msgs:
                await send(m)
            while sid:
                msgs, done = await replica.asgi_pull.remote(sid)
                for m in msgs:
                    await send(m)
                if done:
                    sid = 0
        finally:
            if sid:  # the client left, the request timed out, or the replica failed mid-stream
                replica.asgi_close.remote(sid)

    async def _fail(self, send: Any, status: int, text: str) -> None:
        try:
            await _simple(send, status, text)
        except Exception:  # noqa: BLE001 - the response had started, or the client left
            pass

    async def _websocket(self, router: Any, fwd: dict[str, Any], meta: tuple[str, str], receive: Any,
                         send: Any) -> None:
        try:
            rid = await router.assign(meta[1])
        except (BackPressureError, DeploymentUnavailableError):
            await send({"type": "websocket.close", "code": 1013})
            return
        replica = router.replicas[rid]
        sid = 0
        try:
            sid = await replica.asgi_open.remote(meta, fwd)
            async with trio.open_nursery() as nursery:

                async def pump_in() -> None:
                    while True:
                        msg = await receive()
                        await replica.asgi_push.remote(sid, msg)
                        if msg["type"] == "websocket.disconnect":
                            return

                async def pump_out() -> None:
                    while True:
                        msgs, done = await replica.asgi_pull.remote(sid)
                        for m in msgs:
                            await send(m)
                        if done:
                            nursery.cancel_scope.cancel()
                            return

                nursery.start_soon(pump_in)
                nursery.start_soon(pump_out)
            sid = 0
        except DEAD_ERRORS:
            router.dead(rid)
        except Exception:  # noqa: BLE001 - the client left, or the app failed
            log.debug("websocket session ended with an error", exc_info=True)
        finally:
            if sid:
                replica.asgi_close.remote(sid)
            router.release(rid)


class ServeProxy:
    """The proxy actor: binds the HTTP port and serves until stopped."""

    def __init__(self, http_options: dict[str, Any]) -> None:
        self.opts = HTTPOptions.coerce(http_options)
        self.loop = router_loop()
        self.port_future = self.loop.submit(self._serve)
        self.bound: Any = None

    async def _serve(self) -> None:
        self.loop.want_routes()
        self.stopping = trio.Event()
        app = ProxyApp(self.loop, self.opts.root_path, self.opts.request_timeout_s)
        async with trio.open_nursery() as nursery:
            if self.opts.server == "hypercorn":
                from tray import lowlevel

                Config = lowlevel.require("hypercorn.config", "serve").Config
                serve = lowlevel.require("hypercorn.trio", "serve").serve

                cfg = Config()
                cfg.bind = [f"{self.opts.host}:{self.opts.port}"]
                cfg.keep_alive_timeout = self.opts.keep_alive_timeout_s
                cfg.accesslog = None
                cfg.errorlog = None
                cfg.graceful_timeout = 1.0
                binds = await nursery.start(lambda task_status: serve(app, cfg, shutdown_trigger=self.stopping.wait,
                                                                      task_status=task_status))
                self.bound = int(binds[0].rsplit(":", 1)[1])
            else:
                from . import _http11

                self.bound = await nursery.start(lambda task_status: _http11.serve(
                    app, self.opts.host, self.opts.port, self.stopping, keep_alive_s=self.opts.keep_alive_timeout_s,
                    task_status=task_status))

    async def ready(self) -> int:
        """The port the proxy listens on, once it does (its bind error if it cannot)."""
        import asyncio

        while self.bound is None:
            if self.port_future.done():
                self.port_future.result()  # raises the bind error
                raise RuntimeError("the HTTP proxy stopped before it listened")
            await asyncio.sleep(0.01)
        return int(self.bound)

    async def alive(self) -> bool:
        return True

    async def stop(self) -> None:
        import asyncio

        def trigger() -> None:
            if hasattr(self, "stopping"):
                self.stopping.set()

        assert self.loop.token is not None
        self.loop.token.run_sync_soon(trigger)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.port_future), 5)
        except Exception:  # noqa: BLE001
            pass
