"""Hostile input against a real head node's port: garbage, truncated frames, huge length
prefixes, a wrong token, and a pickle that runs code when unpickled. The node stays up,
serves its real clients, logs each refusal, and never unpickles anything from a peer that
has not proven it knows the cluster token."""

from __future__ import annotations

import os
import pickle
import secrets
import socket
import struct
import time

import msgpack
import pytest

import tray
from tray.cluster_utils import Cluster
from tray.transport._codec import Kind, encode
from tray.transport._peer import MAGIC, _mac


class Boom:
    """Unpickling this creates a file: proof that a payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def connect(address: str) -> socket.socket:
    host, port = address.partition("://")[2].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def read_frame(s: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        more = s.recv(4 - len(head))
        if not more:
            raise EOFError
        head += more
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        more = s.recv(n - len(body))
        if not more:
            raise EOFError
        body += more
    return body


def closed_by_peer(s: socket.socket, timeout: float = 10) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    finally:
        s.close()


@pytest.fixture
def head():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    yield cluster
    cluster.shutdown()


def test_hostile_clients_are_refused_and_the_node_keeps_serving(head, tmp_path):
    address = head.head_node.address
    marker = tmp_path / "unpickled"
    evil = pickle.dumps((Boom(str(marker)),), protocol=5)

    # 1. garbage instead of a handshake
    s = connect(address)
    read_frame(s)  # the challenge
    s.sendall(b"\x00\x00\x00\x05hello, I am not a tray peer" + os.urandom(64))
    assert closed_by_peer(s)

    # 2. a huge length prefix (a 4 GiB frame promised)
    s = connect(address)
    read_frame(s)
    s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"x" * 100)
    assert closed_by_peer(s)

    # 3. a truncated frame, then silence: dropped by the handshake timeout, not held forever
    s = connect(address)
    read_frame(s)
    s.sendall(struct.pack(">I", 100) + b"abc")
    assert closed_by_peer(s, timeout=15)

    # 4. a hello with the wrong token, then a message whose payload runs code when unpickled
    s = connect(address)
    challenge = msgpack.unpackb(read_frame(s))
    nonce = secrets.token_bytes(16)
    hello = [MAGIC, "hello", nonce, _mac(b"wrong token", b"c", challenge[2], nonce), "evil0000", None, None]
    s.sendall(frame(msgpack.packb(hello)))
    for f in encode(Kind.ASK, 1, "nobody:1", "ping", evil, [], 1 << 20):
        s.sendall(bytes(f))
    refused = msgpack.unpackb(read_frame(s))
    assert refused[1] == "refused" and "token" in refused[2]
    assert closed_by_peer(s)

    # 5. no handshake at all: a message straight away
    s = connect(address)
    read_frame(s)
    for f in encode(Kind.TELL, 0, "nobody:1", "ping", evil, [], 1 << 20):
        s.sendall(bytes(f))
    assert closed_by_peer(s)

    assert not marker.exists(), "a payload from an unauthenticated peer was unpickled"
    assert head.head_node.alive()

    # the node still serves real clients
    tray.init(address=head.address)

    @tray.remote
    def square(x):
        return x * x

    assert tray.get([square.remote(i) for i in range(4)], timeout=60) == [0, 1, 4, 9]
    tray.shutdown()

    log = (os.path.join(head.head_node.session_dir, "logs", "node.log"))
    deadline = time.monotonic() + 5
    while True:
        text = open(log).read()
        refusals = text.count("refused an incoming connection")
        if refusals >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert refusals >= 5, text
    assert "wrong cluster token" in text
