"""The debugger's wire: JSON objects, one per line, over a TCP socket.

A session proves nothing to whoever connects until the client proves it holds the cluster
token: the session sends a fresh random challenge and the client answers with
``HMAC-SHA256(token, challenge)``, so the token itself never crosses the wire (a debugger
is remote code execution, and must never be open to whoever can reach the port).

Server to client: ``hello`` (challenge, the session's record), ``ok`` / ``denied``, ``out``
(text pdb wrote), ``input`` (pdb waits for a command line), ``matches`` (tab completions),
``follow`` (the ``remote`` command: the next session to attach to), ``bye`` (the session
ended). Client to server: ``auth``, ``line``, ``complete``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
from typing import Any

MAX_FRAME = 1 << 20  # bytes of one message; a longer line is a broken or hostile peer
HANDSHAKE_TIMEOUT_S = 10.0


class Channel:
    """One connection: send and receive whole messages (dicts with a ``t``ype)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._rfile = sock.makefile("rb")

    def send(self, kind: str, **fields: Any) -> None:
        self.sock.sendall(json.dumps({"t": kind, **fields}).encode() + b"\n")

    def recv(self) -> dict[str, Any] | None:
        """The next message, or None when the peer closed the connection."""
        line = self._rfile.readline(MAX_FRAME + 1)
        if not line:
            return None
        if len(line) > MAX_FRAME or not line.endswith(b"\n"):
            raise ConnectionError("the debugger's peer sent a message that is too long or cut off")
        try:
            msg = json.loads(line)
        except ValueError:
            raise ConnectionError("the debugger's peer sent something that is not a message") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
            raise ConnectionError("the debugger's peer sent a message without a type")
        return msg

    def close(self) -> None:
        try:
            self._rfile.close()
        finally:
            self.sock.close()


def proof(token: str, challenge: str) -> str:
    """What a client holding ``token`` answers to ``challenge``."""
    return hmac.new(token.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def accept_client(chan: Channel, token: str, record: dict[str, Any]) -> str | None:
    """Server side of the handshake: None when the client proved the token, else why not
    (the client was told, and should be closed)."""
    challenge = os.urandom(16).hex()
    chan.sock.settimeout(HANDSHAKE_TIMEOUT_S)
    try:
        chan.send("hello", challenge=challenge, session=record)
        answer = chan.recv()
    except (OSError, ConnectionError) as exc:
        return f"the connection failed during the handshake ({exc})"
    finally:
        chan.sock.settimeout(None)
    if answer is None or answer.get("t") != "auth" or not isinstance(answer.get("mac"), str) \
            or not hmac.compare_digest(answer["mac"], proof(token, challenge)):
        why = "wrong or missing cluster token"
        try:
            chan.send("denied", why=why)
        except OSError:
            pass
        return why
    chan.send("ok")
    return None


def connect(host: str, port: int, token: str, timeout: float = HANDSHAKE_TIMEOUT_S) -> tuple[Channel, dict[str, Any]]:
    """Client side: a channel to the session at ``host:port`` that accepted ``token``, and its
    record. ConnectionError (PermissionError for a refused token) says why not."""
    sock = socket.create_connection((host, port), timeout=timeout)
    chan = Channel(sock)
    try:
        hello = chan.recv()
        if hello is None or hello.get("t") != "hello":
            raise ConnectionError(f"no tray debugger session answers at {host}:{port}")
        chan.send("auth", mac=proof(token, str(hello.get("challenge"))))
        reply = chan.recv()
        if reply is None or reply.get("t") != "ok":
            why = reply.get("why") if reply else "the session closed the connection"
            raise PermissionError(f"the debugger session at {host}:{port} refused us: {why}")
    except BaseException:
        chan.close()
        raise
    sock.settimeout(None)
    return chan, hello.get("session") or {}
