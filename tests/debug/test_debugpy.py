"""The IDE flow: while ``tray debug --debugpy`` runs, ``breakpoint()`` waits for a Debug
Adapter Protocol client, listed with its host:port; a DAP client attaches, stops in the
task's frame and continues it."""

from __future__ import annotations

import json
import socket
from typing import Any

import tray
from tray import lowlevel
from tray.debug import _registry

PROMPT = "Enter breakpoint index or press enter to refresh: "


@tray.remote
def plus_one(x: int) -> int:
    y = x + 1
    breakpoint()
    return y


class Dap:
    """Just enough of a Debug Adapter Protocol client: requests out, messages in."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.rfile = self.sock.makefile("rb")
        self.seq = 0

    def request(self, command: str, **arguments: Any) -> None:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def until(self, kind: str, name: str) -> dict[str, Any]:
        """Read messages until a response to ``name`` or an event ``name`` (kind says which)."""
        while True:
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert length, "the debug adapter closed the connection"
            msg = json.loads(self.rfile.read(length))
            if msg.get("type") == kind and (msg.get("command") or msg.get("event")) == name:
                return msg

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def test_breakpoint_waits_for_an_ide_while_tray_debug_debugpy_runs(driver: None, tray_debug, sessions) -> None:
    debug = tray_debug("--debugpy")
    debug.expect_exact(PROMPT)  # the cluster is in debugpy mode from here on
    ref = plus_one.remote(1)
    (session,) = sessions(1)
    assert session["kind"] == "debugpy" and session["name"] == "plus_one"
    debug.sendline("")
    debug.expect(r"0\s.*debugpy\s+plus_one\s.*127\.0\.0\.1:(\d+)")
    assert int(debug.match.group(1)) == session["port"]
    debug.expect_exact(PROMPT)
    debug.sendline("0")
    debug.expect_exact(f"Attach your IDE's debugger to 127.0.0.1:{session['port']}")

    dap = Dap(session["host"], session["port"])
    try:
        dap.request("initialize", adapterID="tray-test", clientID="test")
        dap.until("response", "initialize")
        dap.request("attach", justMyCode=False)
        dap.until("event", "initialized")
        dap.request("configurationDone")
        thread = dap.until("event", "stopped")["body"]["threadId"]
        dap.request("stackTrace", threadId=thread)
        top = dap.until("response", "stackTrace")["body"]["stackFrames"][0]
        assert top["name"] == "plus_one" and top["source"]["path"].endswith("test_debugpy.py")  # the task's frame
        dap.request("continue", threadId=thread)
        dap.until("response", "continue")
        dap.request("disconnect", terminateDebuggee=False)
        assert tray.get(ref, timeout=60) == 2
    finally:
        dap.close()
    assert sessions(0) == []
    debug.expect_exact(PROMPT)
    debug.sendeof()
    debug.expect_exact("\n")
    debug.expect(__import__("pexpect").EOF)
    assert _registry.get_mode(lowlevel.control_call) is None  # debugpy mode ends with the command
