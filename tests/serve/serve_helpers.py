"""Helpers shared by the Serve tests."""

from __future__ import annotations

from typing import Any


def wait_for(pred: Any, timeout: float = 60.0, interval: float = 0.1, what: str = "condition") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def ws_roundtrip(port: int, path: str, messages: list[str], timeout: float = 30.0) -> list[str]:
    """Open a WebSocket (wsproto over a plain socket), send ``messages`` one by one, collect the text
    replies until the server closes."""
    import socket

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
    replies: list[str] = []
    pending = list(messages)
    accepted = False
    closed = False
    buf = ""
    try:
        while not closed:
            data = sock.recv(65536)
            if not data:
                break
            ws.receive_data(data)
            for ev in ws.events():
                if isinstance(ev, AcceptConnection):
                    accepted = True
                    sock.sendall(ws.send(TextMessage(pending.pop(0))))
                elif isinstance(ev, Message):
                    buf += ev.data
                    if ev.message_finished:
                        replies.append(buf)
                        buf = ""
                        if pending:
                            sock.sendall(ws.send(TextMessage(pending.pop(0))))
                elif isinstance(ev, CloseConnection):
                    try:
                        sock.sendall(ws.send(ev.response()))
                    except Exception:  # noqa: BLE001
                        pass
                    closed = True
    finally:
        sock.close()
    assert accepted, "the server did not accept the WebSocket"
    return replies
