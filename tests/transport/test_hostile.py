"""Bad input from the network is contained to its one connection; everyone else is served."""

from __future__ import annotations

import logging
import pickle
import socket
import struct
from typing import Any

import msgpack
import pytest
import trio
from remote_actors import Counter

import tray
from tray.exceptions import RayTaskError
from tray.transport._codec import Kind, dumps, encode
from tray.transport._peer import MAGIC, _mac

TOKEN = "secret"


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


class RawClient:
    """A hand-driven tray peer over a plain socket, to send what a real one never would."""

    def __init__(self, address: str) -> None:
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        self.sock = trio.socket.socket()
        self.addr = (host, int(port))
        self.buf = b""

    async def connect(self, token: str = TOKEN) -> None:
        await self.sock.connect(self.addr)
        ch = msgpack.unpackb(await self.read_frame())
        import secrets

        nonce_c = secrets.token_bytes(16)
        hello = [MAGIC, "hello", nonce_c, _mac(token.encode(), b"c", ch[2], nonce_c), "raw00000", None, None]
        await self.send(_frame(msgpack.packb(hello)))
        welcome = msgpack.unpackb(await self.read_frame())
        assert welcome[1] == "welcome", welcome

    async def send(self, data: bytes) -> None:
        await self.sock.send(data)

    async def read_frame(self) -> bytes:
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            more = await self.sock.recv(65536)
            if not more:
                raise EOFError
            self.buf += more
        n = struct.unpack(">I", self.buf[:4])[0]
        frame, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
        return frame

    async def read_message(self) -> list:
        while True:
            env = msgpack.unpackb(await self.read_frame())
            if env[0] != Kind.HEARTBEAT:
                return env

    async def closed_by_server(self) -> bool:
        with trio.fail_after(5):
            try:
                while True:
                    if not await self.sock.recv(65536):
                        return True
            except ConnectionResetError:
                return True


async def _check_others_still_served(a: tray.ActorSystem, ref: tray.ActorRef, n: int) -> None:
    assert await ref.incr.ask() == n


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="garbage-before-handshake"),
        pytest.param(struct.pack(">I", 2**31) + b"x" * 100, id="oversized-frame-before-handshake"),
        pytest.param(_frame(msgpack.packb([MAGIC, "hello", b"n", b"bad-mac", "zz", None, None])), id="bad-hello"),
    ],
)
def test_unauthenticated_garbage_is_refused(attack: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            raw = RawClient(b.address)  # type: ignore[arg-type]
            await raw.sock.connect(raw.addr)
            await raw.send(attack)
            assert await raw.closed_by_server()
            raw.sock.close()
            await _check_others_still_served(a, ref, 1)

    with caplog.at_level(logging.WARNING, logger="tray.transport"):
        trio.run(main)
    assert "refused an incoming connection" in caplog.text


def _ask(dst: str, method: str, payload: bytes, corr: int = 1) -> bytes:
    return b"".join(bytes(f) for f in encode(Kind.ASK, corr, dst, method, payload, [], 1 << 20))


@pytest.mark.parametrize(
    "attack,why",
    [
        (lambda dst: _frame(b"\xc1\xc1\xc1"), "undecodable envelope"),
        (lambda dst: _frame(msgpack.packb([77, 0, None, None, None, []])), "unknown message kind"),
        (lambda dst: _frame(msgpack.packb({"kind": 1})), "6-element"),
        (lambda dst: struct.pack(">I", 2**31 - 1), "exceeds the maximum"),
        (lambda dst: _frame(msgpack.packb([Kind.TELL, 0, dst, "incr", b"", [2**40]])), "exceeds the maximum"),
        (
            lambda dst: _frame(msgpack.packb([Kind.SYSTEM, 0, dst, None, dumps(("reboot",))[0], []])),
            "bad system message",
        ),
    ],
)
def test_malformed_messages_close_only_that_connection(attack: Any, why: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            raw = RawClient(b.address)  # type: ignore[arg-type]
            await raw.connect()
            await raw.send(_ask(ref.actor_id, "incr", dumps(((), {}))[0]))
            assert (await raw.read_message())[:2] == [Kind.REPLY_OK, 1]  # a working peer, until...
            await raw.send(attack(ref.actor_id))
            assert await raw.closed_by_server()
            raw.sock.close()
            await _check_others_still_served(a, ref, 2)

    with caplog.at_level(logging.WARNING, logger="tray.transport"):
        trio.run(main)
    assert why in caplog.text


def test_payloads_that_fail_to_unpickle_get_an_error_reply(caplog: pytest.LogCaptureFixture) -> None:
    bad = pickle.dumps(("x",))[:-3]  # truncated
    missing = b"\x80\x05\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x0eno_such_modulez\x94\x8c\x01X\x94\x93\x94."

    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            raw = RawClient(b.address)  # type: ignore[arg-type]
            await raw.connect()
            for corr, payload in ((5, bad), (6, missing)):
                await raw.send(_ask(ref.actor_id, "incr", payload, corr))
                env = await raw.read_message()
                assert env[:2] == [Kind.REPLY_ERR, corr]
                assert isinstance(pickle.loads(env[4]), RayTaskError)
            # an unknown method and an unknown actor are errors to the asker, not crashes
            await raw.send(_ask(ref.actor_id, "_private", dumps(((), {}))[0], 7))
            assert (await raw.read_message())[:2] == [Kind.REPLY_ERR, 7]
            await raw.send(_ask(b.uid + ":999", "incr", dumps(((), {}))[0], 8))
            assert (await raw.read_message())[:2] == [Kind.REPLY_ERR, 8]
            # the same connection still works
            await raw.send(_ask(ref.actor_id, "incr", dumps(((), {}))[0], 9))
            env = await raw.read_message()
            assert env[:2] == [Kind.REPLY_OK, 9] and pickle.loads(env[4]) == 1
            raw.sock.close()
            await _check_others_still_served(a, ref, 2)

    with caplog.at_level(logging.WARNING, logger="tray.transport"):
        trio.run(main)
    assert "failed to unpickle" in caplog.text


def test_plain_socket_client_gets_nothing_before_auth() -> None:
    """Listening sockets bind loopback; an unauthenticated client sees only the challenge."""

    async def main() -> None:
        async with tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            host, port = b.address.removeprefix("tcp://").rsplit(":", 1)  # type: ignore[union-attr]
            s = socket.create_connection((host, int(port)))
            try:
                s.settimeout(5)
                data = await trio.to_thread.run_sync(s.recv, 4096)
                body = msgpack.unpackb(data[4:])
                assert body[:2] == [MAGIC, "challenge"]
            finally:
                s.close()

    trio.run(main)
