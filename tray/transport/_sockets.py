"""TCP and Unix-domain socket transports over trio.

Writes are vectored (``sendmsg`` of many buffers: one syscall for many queued frames,
and no copy of big out-of-band buffers); reads go straight into the caller's buffer.
"""

from __future__ import annotations

import errno
import os
import socket as _stdsocket
from typing import Any
from urllib.parse import urlsplit

import trio

from ._base import Handler, Listener, Stream, Transport

__all__ = ["SocketTransport", "parse_address"]

_IOV_MAX = 512
_SMALL = 16 * 1024  # buffers below this are joined before sending


def parse_address(address: str) -> tuple[str, Any]:
    """``tcp://host:port`` -> ("tcp", (host, port)); ``unix:///path`` -> ("unix", path)."""
    if not isinstance(address, str):
        raise TypeError(f"address must be a str, got {address!r}")
    u = urlsplit(address)
    if u.scheme == "tcp":
        host = u.hostname or "127.0.0.1"  # loopback unless told otherwise
        try:
            port = u.port if u.port is not None else 0
        except ValueError:
            raise ValueError(f"bad port in {address!r}") from None
        return "tcp", (host, port)
    if u.scheme == "unix":
        path = (u.netloc + u.path) if u.netloc else u.path
        if not path:
            raise ValueError(f"no path in {address!r}")
        return "unix", path
    raise ValueError(f"unsupported address {address!r}: expected tcp://host:port or unix:///path")


class SocketStream(Stream):
    __slots__ = ("sock", "_closed", "try_send")

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self._closed = False
        # The non-blocking stdlib socket under trio's: lets a sender write at once,
        # without a task switch, when nothing else is queued (see Peer.post).
        raw = getattr(sock, "_sock", None)
        self.try_send = raw.send if raw is not None else None
        if sock.family in (_stdsocket.AF_INET, _stdsocket.AF_INET6):
            sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)

    async def send_messages(self, messages: list[list[Any]]) -> None:
        iov: list[Any] = []
        small: list[Any] = []
        for msg in messages:
            for b in msg:
                if len(b) < _SMALL if type(b) is bytes else b.nbytes < _SMALL:
                    small.append(b)
                else:
                    if small:
                        iov.append(b"".join(small))
                        small = []
                    iov.append(b)
        if small:
            iov.append(b"".join(small) if len(small) > 1 else small[0])
        sock = self.sock
        if len(iov) == 1:
            data = memoryview(iov[0]).cast("B")
            while data:
                n = await sock.send(data)
                data = data[n:]
            return
        views = [memoryview(b).cast("B") for b in iov]
        while views:
            n = await sock.sendmsg(views[:_IOV_MAX])
            while n:
                first = views[0]
                if n >= first.nbytes:
                    n -= first.nbytes
                    views.pop(0)
                else:
                    views[0] = first[n:]
                    n = 0

    async def receive_into(self, view: memoryview) -> int:
        try:
            return await self.sock.recv_into(view)
        except (ConnectionResetError, BrokenPipeError):
            return 0

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close()
            await trio.lowlevel.checkpoint()


class _SocketListener(Listener):
    def __init__(self, sock: trio.socket.SocketType, address: str, path: str | None) -> None:
        self.sock = sock
        self.address = address
        self.path = path
        self.scope = trio.CancelScope()

    async def aclose(self) -> None:
        self.scope.cancel()
        self.sock.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        await trio.lowlevel.checkpoint()


class SocketTransport(Transport):
    """``tcp://`` and ``unix://`` streams."""

    schemes = ("tcp", "unix")

    async def connect(self, address: str) -> Stream:
        kind, where = parse_address(address)
        if kind == "tcp":
            host, port = where
            stream = await trio.open_tcp_stream(host, port)
            return SocketStream(stream.socket)
        sock = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
        try:
            await sock.connect(where)
        except BaseException:
            sock.close()
            raise
        return SocketStream(sock)

    async def listen(self, address: str, handler: Handler, nursery: trio.Nursery) -> Listener:
        kind, where = parse_address(address)
        if kind == "tcp":
            host, port = where
            infos = await trio.socket.getaddrinfo(host, port, type=_stdsocket.SOCK_STREAM, flags=_stdsocket.AI_PASSIVE)
            family = infos[0][0]
            sock = trio.socket.socket(family, _stdsocket.SOCK_STREAM)
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
            await sock.bind(infos[0][4])
            h, p = sock.getsockname()[:2]
            bound = f"tcp://[{h}]:{p}" if ":" in h else f"tcp://{h}:{p}"
            path = None
        else:
            path = where
            sock = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
            try:
                await sock.bind(path)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    sock.close()
                    raise
                # A stale socket file (its process died) is replaced; a live one is not.
                probe = _stdsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
                try:
                    probe.connect(path)
                except OSError:
                    os.unlink(path)
                    await sock.bind(path)
                else:
                    sock.close()
                    raise
                finally:
                    probe.close()
            bound = f"unix://{path}"
        sock.listen(256)
        listener = _SocketListener(sock, bound, path)

        async def accept_loop() -> None:
            with listener.scope:
                while True:
                    try:
                        conn, _ = await sock.accept()
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            await trio.sleep(0.05)
                            continue
                        return
                    nursery.start_soon(handler, SocketStream(conn))

        nursery.start_soon(accept_loop)
        return listener
