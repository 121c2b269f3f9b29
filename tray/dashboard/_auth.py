"""Token authentication for every dashboard request (an ASGI middleware).

API clients send the cluster token as ``Authorization: Bearer <token>`` or ``X-Tray-Token``;
browsers sign in once on ``/login`` (a form), which sets an HttpOnly cookie. Anything else
gets 401 (a browser asking for a page is sent to the login page instead). Ray's job API
listened unauthenticated on 0.0.0.0 and was abused; this one is closed by default.
"""

from __future__ import annotations

import hmac
import html
from typing import Any
from urllib.parse import parse_qs, quote

COOKIE = "tray_token"
OPEN_PATHS = ("/login", "/favicon.ico")


def token_of(scope: dict[str, Any]) -> str | None:
    """The token a request carries (header, then cookie), or None."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "x-tray-token" in headers:
        return headers["x-tray-token"].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def allowed(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>tray dashboard: sign in</title>
<link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;display:flex;justify-content:center;margin-top:12vh}}
form{{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0002;width:24em}}
input{{width:100%;padding:.5em;margin:.5em 0 1em;box-sizing:border-box}}button{{padding:.5em 1.5em}}
.err{{color:#b00}}</style></head><body><form method="post" action="/login">
<h2>tray dashboard</h2><p>Enter the cluster token (<code>tray start --head</code> printed it;
it is also <code>TRAY_CLUSTER_TOKEN</code>).</p>{error}
<input type="password" name="token" id="token" autofocus autocomplete="current-password">
<input type="hidden" name="next" value="{next}">
<button type="submit" id="signin">Sign in</button></form></body></html>"""


class TokenAuth:
    """ASGI middleware: pass requests that carry ``token``; serve ``/login`` itself."""

    def __init__(self, app: Any, token: str) -> None:
        if not token:
            raise ValueError("the dashboard needs the cluster token (TRAY_CLUSTER_TOKEN) to check requests")
        self.app, self.token = app, token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/login" and scope["type"] == "http":
            await self._login(scope, receive, send)
            return
        if path == "/favicon.ico":
            await _respond(send, 204, b"", "text/plain")
            return
        if allowed(token_of(scope), self.token):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", "") and not path.startswith("/api"):
            target = path + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
            await _respond(send, 303, b"", "text/plain", [(b"location", f"/login?next={quote(target)}".encode())])
            return
        await _respond(send, 401, b'{"result": false, "msg": "401 Unauthorized: send the cluster token as '
                       b'Authorization: Bearer TOKEN or X-Tray-Token"}', "application/json",
                       [(b"www-authenticate", b'Bearer realm="tray"')])

    async def _login(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        nxt = _safe_next(query.get("next", ["/"])[0])
        if scope.get("method") == "POST":
            body = b""
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if len(body) > 65536:
                    await _respond(send, 413, b"too large", "text/plain")
                    return
                if not msg.get("more_body"):
                    break
            form = parse_qs(body.decode(errors="replace"))
            given = form.get("token", [""])[0].strip()
            nxt = _safe_next(form.get("next", [nxt])[0])
            if allowed(given, self.token):
                cookie = f"{COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict"
                await _respond(send, 303, b"", "text/plain",
                               [(b"location", nxt.encode()), (b"set-cookie", cookie.encode())])
                return
            page = LOGIN_PAGE.format(error='<p class="err" id="error">Wrong token.</p>', next=html.escape(nxt))
            await _respond(send, 401, page.encode(), "text/html; charset=utf-8")
            return
        page = LOGIN_PAGE.format(error="", next=html.escape(nxt))
        await _respond(send, 200, page.encode(), "text/html; charset=utf-8")


def _safe_next(target: str) -> str:
    """Only a local path (no open redirect to another site)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def _respond(send: Any, status: int, body: bytes, ctype: str,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
