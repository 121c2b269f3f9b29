"""One debugger session of a paused worker: a socket bound to loopback (or the node's
address when asked), the session's record in the cluster's KV table while it is open, and
pdb's terminal: what pdb writes goes to the attached client, what pdb reads comes from it.

A client that goes away (Ctrl-D, a dropped connection) leaves the session open and listed:
the next ``tray debug`` that attaches finds pdb where it was. ``close`` ends it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

import tray
from tray import lowlevel

from . import _registry
from ._wire import Channel, accept_client

MAX_PENDING = 1 << 16  # characters of output kept while no client is attached


def bind_address() -> tuple[str, str]:
    """``(host to bind, host to advertise)``: loopback, unless the debugger is external
    (``TRAY_DEBUGGER_EXTERNAL=1``): then every interface, advertised as the node's address."""
    if not lowlevel.setting("debugger_external"):
        return "127.0.0.1", "127.0.0.1"
    advertised = lowlevel.setting("node_ip") or socket.gethostbyname(socket.gethostname())
    return "0.0.0.0", advertised


_INTERNAL = os.path.dirname(os.path.abspath(tray.__file__)) + os.sep  # tray's own frames
_DEBUGGERS = ("bdb.py", "pdb.py")


def _internal(frame: FrameType) -> bool:
    name = frame.f_code.co_filename
    return name.startswith(_INTERNAL) or os.path.basename(name) in _DEBUGGERS


def task_function(frame: FrameType | None) -> str | None:
    """The qualified name of the task or actor method ``frame`` runs in: the outermost frame
    of the user's own code, below tray's (and the debugger's) frames."""
    found = None
    while frame is not None and not _internal(frame):
        found = frame.f_code.co_qualname
        frame = frame.f_back
    return found


DYNAMIC = "<dynamic-code>"  # cloudpickle's file name for the code of functions it pickled by value


def source_file(frame: FrameType) -> str:
    """The file ``frame``'s code came from: a driver script's functions travel by value and
    lose their file name on the way, but keep their module's ``__file__``."""
    name = frame.f_code.co_filename
    if name == DYNAMIC:
        return str(frame.f_globals.get("__file__") or name)
    return name


def announce(kind: str, frame: FrameType, lineno: int | None, host: str, port: int, *,
             follow: str | None = None, error: str | None = None) -> dict[str, Any]:
    """List a stop in the cluster's KV table, mark the task paused, and say so on stderr
    (which reaches the driver's terminal); the stop's record."""
    info = lowlevel.runtime_info()
    ctx = tray.get_runtime_context()
    record = _registry.new_record(
        session_id=uuid.uuid4().hex, kind=kind, host=host, port=port, pid=os.getpid(), node_id=info.node_id,
        job_id=info.job_id, task_id=ctx.get_task_id(), actor_id=ctx.get_actor_id(), name=task_function(frame),
        function=frame.f_code.co_qualname, filename=source_file(frame), lineno=lineno or frame.f_lineno,
        time=time.time(), follow=follow, error=error)
    lowlevel.paused_in_debugger(True)
    _registry.put(lowlevel.control_call, record)
    what = "raised" if kind == "post_mortem" else "paused"
    how = "attach an IDE (debugpy) to" if kind == "debugpy" else "run `tray debug` to attach; listening on"
    print(f"tray debugger: {record['name'] or record['function']} {what} at {record['filename']}:{record['lineno']}"
          f"; {how} {host}:{port}", file=sys.stderr, flush=True)
    return record


def withdraw(record: dict[str, Any]) -> None:
    """The stop is over: its listing goes away, the task runs again."""
    lowlevel.paused_in_debugger(False)
    try:
        _registry.remove(lowlevel.control_call, record["session_id"])
    except Exception:  # noqa: BLE001 - a cluster going away takes the record with it
        pass


class Session:
    """The socket and the record of one stop in the debugger; pdb's stdin and stdout."""

    encoding = "utf-8"

    def __init__(self, kind: str, *, follow: str | None = None, error: str | None = None,
                 complete: Callable[[str, int, int], list[str]] | None = None,
                 banner: Callable[[], str] | None = None) -> None:
        self.kind, self.follow, self.error = kind, follow, error
        self.complete = complete or (lambda line, begidx, endidx: [])
        self.banner = banner or (lambda: "")  # what a client attaching again sees first
        self.listener: socket.socket | None = None
        self.chan: Channel | None = None
        self.record: dict[str, Any] = {}
        self.pending: list[str] = []
        self._pending_size = 0
        self._token = ""
        self._left = False  # a client left in the middle: the next one is shown where pdb is

    @property
    def is_open(self) -> bool:
        return self.listener is not None

    # ------------------------------------------------------------ open and close

    def open(self, frame: FrameType, lineno: int | None = None) -> None:
        """Listen, list this session in the cluster's KV table, and say so on stderr."""
        self._token = lowlevel.runtime_info().token
        bind, host = bind_address()
        self.listener = socket.create_server((bind, 0))
        self.record = announce(self.kind, frame, lineno, host, self.listener.getsockname()[1],
                               follow=self.follow, error=self.error)

    def close(self, why: str = "the session ended") -> None:
        """End the session: the client is told, the record goes away. Idempotent."""
        if self.listener is None:
            return
        listener, self.listener = self.listener, None
        try:
            if self.chan is not None:
                self.flush()
                try:
                    if self.chan is not None:
                        self.chan.send("bye", why=why)
                except OSError:
                    pass
                self._drop()
        finally:
            listener.close()
            withdraw(self.record)

    # ------------------------------------------------------------ clients

    def attach(self, timeout: float | None = None) -> bool:
        """Wait for a client that proves the cluster token (others are told no and closed);
        False if none came within ``timeout`` seconds."""
        assert self.listener is not None, "attach before open"
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.chan is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.listener.settimeout(left)
            try:
                conn, peer = self.listener.accept()
            except TimeoutError:
                return False
            chan = Channel(conn)
            refused = accept_client(chan, self._token, self.record)
            if refused is not None:
                print(f"tray debugger: refused a connection from {peer[0]}:{peer[1]}: {refused}",
                      file=sys.stderr, flush=True)
                chan.close()
                continue
            self.chan = chan
        return True

    def send_follow(self, follow: str) -> None:
        """Tell the client which session to attach to next (the ``remote`` command)."""
        if self.chan is not None:
            try:
                self.flush()
                self.chan.send("follow", follow=follow)
            except OSError:
                self._drop()

    def _drop(self) -> None:
        if self.chan is not None:
            chan, self.chan = self.chan, None
            chan.close()

    # ------------------------------------------------------------ pdb's stdout

    def write(self, text: str) -> int:
        self.pending.append(text)
        self._pending_size += len(text)
        while self._pending_size > MAX_PENDING and len(self.pending) > 1:
            self._pending_size -= len(self.pending.pop(0))
        return len(text)

    def flush(self) -> None:
        if self.chan is None or not self.pending:
            return
        text, self.pending, self._pending_size = "".join(self.pending), [], 0
        try:
            self.chan.send("out", text=text)
        except OSError:
            self._drop()

    # ------------------------------------------------------------ pdb's stdin

    def readline(self, size: int = -1) -> str:
        """The client's next command line; a client that leaves is replaced by the next one
        that attaches. Anything else that stops the wait (a cancel) ends the session."""
        try:
            while True:
                if self.chan is None:
                    self.attach()
                    if self._left:
                        self.pending.append(self.banner())
                line = self._one_line()
                if line is not None:
                    return line
                self._drop()
                self._left = True
                print("tray debugger: the client detached; the task stays paused until one attaches",
                      file=sys.stderr, flush=True)
        except BaseException:
            self.close("the task was interrupted")
            raise

    def _one_line(self) -> str | None:
        """A line from the attached client, answering its completion requests meanwhile; None
        if it left."""
        self.flush()
        try:
            assert self.chan is not None
            self.chan.send("input")
            while True:
                msg = self.chan.recv()
                if msg is None:
                    return None
                if msg["t"] == "line":
                    return str(msg.get("text", "")) + "\n"
                if msg["t"] == "complete":
                    line = str(msg.get("line", ""))
                    items = self.complete(line, int(msg.get("begidx", len(line))), int(msg.get("endidx", len(line))))
                    self.chan.send("matches", items=[str(i) for i in items or ()])
        except (OSError, ConnectionError, ValueError):
            return None
