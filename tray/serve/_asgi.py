"""Running ASGI inside a replica: one session per HTTP request or WebSocket.

A session runs the app (the user's FastAPI/ASGI app, or a ``__call__(request)`` adapter) in
an asyncio task; what the proxy receives from the client is pushed into the session, what the
app sends is buffered until the proxy pulls it. A plain HTTP response comes back whole in the
first reply; a streaming one comes back in pieces, each pull taking all that is buffered.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON = [(b"content-type", b"application/json")]


def plain_response(result: Any) -> list[Message] | None:
    """The ASGI messages for a handler's plain return value (str -> text, bytes, else JSON),
    or None when it is a Response object that must run as ASGI itself."""
    if isinstance(result, str):
        body, headers = result.encode(), _TEXT
    elif isinstance(result, (bytes, bytearray)):
        body, headers = bytes(result), [(b"content-type", b"application/octet-stream")]
    elif _is_response(result):
        return None
    else:
        try:
            body = json.dumps(result, separators=(",", ":")).encode()
        except TypeError:
            from fastapi.encoders import jsonable_encoder

            body = json.dumps(jsonable_encoder(result), separators=(",", ":")).encode()
        headers = _JSON
    return [{"type": "http.response.start", "status": 200,
             "headers": [*headers, (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body, "more_body": False}]


def _is_response(value: Any) -> bool:
    from starlette.responses import Response

    return isinstance(value, Response)


def error_messages(exc: BaseException, status: int = 500) -> list[Message]:
    body = ("".join(traceback.format_exception(exc))).encode()
    return [{"type": "http.response.start", "status": status,
             "headers": [*_TEXT, (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body, "more_body": False}]


def call_adapter(fn: Callable[..., Any]) -> ASGIApp:
    """An ASGI app around a ``__call__(request: starlette.requests.Request)`` handler."""
    from starlette.requests import Request

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        result = fn(Request(scope, receive))
        if inspect.isawaitable(result):
            result = await result
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            raise TypeError("an HTTP handler returned a generator; wrap it in starlette's StreamingResponse")
        msgs = plain_response(result)
        if msgs is None:
            await result(scope, receive, send)
        else:
            for m in msgs:
                await send(m)

    return app


async def call_handler(fn: Callable[..., Any], scope: dict[str, Any], body: bytes) -> Any:
    """Call a ``__call__(request)`` handler on a request whose body is already here."""
    from starlette.requests import Request

    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the proxy cancels the request if the client leaves
        return {"type": "http.disconnect"}

    result = fn(Request(scope, receive))
    if inspect.isawaitable(result):
        result = await result
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        raise TypeError("an HTTP handler returned a generator; wrap it in starlette's StreamingResponse")
    return result


def response_app(response: Any) -> ASGIApp:
    """An ASGI app that sends a Response object the handler returned."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await response(scope, receive, send)

    return app


class Session:
    """One ASGI connection's run inside the replica."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: list[Message] = []
        self.changed = asyncio.Event()
        self.done = False
        self.error: BaseException | None = None
        self.started = False  # the response has started (http) or the socket was accepted (ws)
        self.scope = scope
        self.task = asyncio.get_running_loop().create_task(self._run(app))

    async def _run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.inbox.get, self._send)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the client as a 500 (or ws close)
            self.error = exc
            if self.scope["type"] == "http" and not self.started:
                self.outbox.extend(error_messages(exc))
            elif self.scope["type"] == "websocket":
                self.outbox.append({"type": "websocket.close", "code": 1011})
        finally:
            if self.scope["type"] == "http" and not self.started and self.error is None:
                self.outbox.extend(error_messages(RuntimeError("the ASGI app returned without a response")))
            self.done = True
            self.changed.set()

    async def _send(self, msg: Message) -> None:
        kind = msg["type"]
        if kind in ("http.response.start", "websocket.accept", "websocket.close"):
            self.started = True
        self.outbox.append(msg)
        self.changed.set()

    def complete(self) -> bool:
        """Has the HTTP response been sent whole?"""
        if self.done:
            return True
        last = self.outbox[-1] if self.outbox else None
        return last is not None and last["type"] == "http.response.body" and not last.get("more_body", False)

    async def pull(self) -> tuple[list[Message], bool]:
        """Wait for something to send (or the end), then take all of it."""
        while not self.outbox and not self.done:
            self.changed.clear()
            await self.changed.wait()
        out, self.outbox = self.outbox, []
        return out, self.done and not self.outbox

    def close(self) -> None:
        if not self.task.done():
            self.task.cancel()
