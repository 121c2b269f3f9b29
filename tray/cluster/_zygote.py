"""The node's side of the zygote (see ``tray.core._forkserver``): an actor that starts it and
has it fork default workers, and the process handle those workers get.

The zygote starts first among the node's actors, so its imports run while the rest of the
node starts; a worker asked of it before it is ready waits in its socket. It serves only
default workers (a runtime_env worker starts as its own interpreter: its environment,
interpreter and directory are its own), and only while it lives: a node whose zygote died
starts workers by spawning them, as it would without one. A forked worker is the zygote's
child, so its exit status comes from the zygote; the node holds a pidfd of it (Linux), for
signals that never reach a reused pid and to see it end should the zygote die first.
"""

from __future__ import annotations

import array
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
from typing import Any

import trio

from ..actors import Actor

ZYGOTE_NAME = "tray.zygote"
WORKER_MODULE = "tray.core._worker"
ZYGOTE_FLAG = "--zygote"  # the worker module's: run as the zygote
MAX_MESSAGE = 1 << 16
GRACE_S = 2.0
FORK_TIMEOUT_S = 60.0  # the zygote's imports come first, on a loaded machine
KEEP_EXITS = 4096  # exit statuses kept for late askers


def available() -> bool:
    """Can this system run a zygote? (It needs pidfds: Linux 5.3 and later.)"""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


class ZygoteGone(RuntimeError):
    """The zygote died, or stopped, before it forked the worker asked of it."""


class Zygote(Actor):
    """The zygote process of a node: forks workers whose environment is ``env``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: trio.Process | None = None
        self.sock: Any = None  # trio socket to the zygote
        self.forks: dict[int, trio.MemorySendChannel] = {}  # request id -> where (pid, pidfd) goes
        self.exits: dict[int, int] = {}  # pid -> returncode, of the latest children that exited
        self.exit_seen: dict[int, trio.Event] = {}
        self._ids = itertools.count(1)
        self._send_lock = trio.Lock()

    async def on_start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", WORKER_MODULE, ZYGOTE_FLAG],
                stdin=theirs.fileno(), stdout=subprocess.DEVNULL, stderr=None, env=self.env)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = trio.socket.from_stdlib_socket(ours)
        self.start_soon(self._read)
        self.start_soon(self._wait)

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def fork(self, argv: list[str], fds: tuple[int, int, int]) -> tuple[int, int]:
        """Fork a worker running ``python -m tray.core._worker ARGV`` with ``fds`` as its
        stdin, stdout and stderr: its pid and a pidfd of it (the caller's to close). The
        caller keeps and closes ``fds``."""
        req_id = next(self._ids)
        send, recv = trio.open_memory_channel[tuple[int, int]](1)
        self.forks[req_id] = send
        try:
            async with self._send_lock:
                await self.sock.sendmsg([pickle.dumps((req_id, argv))],
                                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
            with trio.fail_after(FORK_TIMEOUT_S):
                return await recv.receive()
        except (OSError, trio.BrokenResourceError, trio.EndOfChannel, trio.TooSlowError) as exc:
            raise ZygoteGone(f"the zygote could not fork a worker: {exc!r}") from None
        finally:
            self.forks.pop(req_id, None)

    async def wait_exit(self, pid: int) -> int:
        """The returncode of forked worker ``pid``, once it has exited."""
        if pid not in self.exits:
            await self.exit_seen.setdefault(pid, trio.Event()).wait()
        self.exit_seen.pop(pid, None)
        return self.exits[pid]  # kept: an asker cancelled after this ask again

    async def _read(self) -> None:
        fd_space = socket.CMSG_SPACE(array.array("i").itemsize)
        while True:
            try:
                data, ancdata, _, _ = await self.sock.recvmsg(MAX_MESSAGE, fd_space)
            except OSError:
                data, ancdata = b"", []
            fds = [fd for level, kind, raw in ancdata if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
                   for fd in array.array("i", raw[: len(raw) - len(raw) % 4])]
            if not data:
                for fd in fds:
                    os.close(fd)
                return  # the zygote ended: _wait says how
            kind, key, value = pickle.loads(data)
            if kind == "forked":
                channel = self.forks.get(key)
                pidfd = fds[0] if fds else -1
                if channel is None:  # its asker gave up: the worker finds no node waiting and exits
                    if pidfd >= 0:
                        os.close(pidfd)
                else:
                    channel.send_nowait((value, pidfd))
            else:  # "exited": key is the pid, value its returncode
                self.exits[key] = value
                if len(self.exits) > KEEP_EXITS:  # the oldest (dicts keep their order)
                    del self.exits[next(iter(self.exits))]
                event = self.exit_seen.get(key)
                if event is not None:
                    event.set()

    async def _wait(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        await self.stop(ZygoteGone(f"the zygote (pid {self.proc.pid}) exited with code {code}"))

    async def on_stop(self) -> None:
        for channel in self.forks.values():
            channel.close()
        if self.sock is not None:
            self.sock.close()  # the zygote exits on its end
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with trio.move_on_after(GRACE_S):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


class ForkedProcess:
    """A worker the zygote forked, with what ``WorkerProcess`` uses of a ``trio.Process``:
    ``pid``, ``returncode``, ``stdin``/``stdout``/``stderr`` streams, ``wait``, ``kill``,
    ``terminate``. ``status_lost``: it ended after the zygote, which alone could know how."""

    def __init__(self, zygote: Any, pid: int, pidfd: int, stdin: int, stdout: int, stderr: int) -> None:
        self.zygote = zygote  # the Zygote actor's ref
        self.pid = pid
        self.returncode: int | None = None
        self.status_lost = False
        self.stdin = trio.lowlevel.FdStream(stdin)
        self.stdout = trio.lowlevel.FdStream(stdout)
        self.stderr = trio.lowlevel.FdStream(stderr)
        self._pidfd: int | None = pidfd if pidfd >= 0 else None
        self._asking: trio.Event | None = None  # set when the one ask out for the exit status ends

    @classmethod
    async def start(cls, zygote: Any, argv: list[str]) -> ForkedProcess:
        """Have ``zygote`` fork a worker with ``argv``; our ends of its stdio pipes are ours."""
        pipes = [os.pipe() for _ in range(3)]  # close-on-exec: no process started meanwhile inherits them
        theirs = (pipes[0][0], pipes[1][1], pipes[2][1])
        try:
            pid, pidfd = await zygote.fork.ask(argv, theirs)
        except BaseException:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            raise
        for fd in theirs:
            os.close(fd)
        return cls(zygote, pid, pidfd, pipes[0][1], pipes[1][0], pipes[2][0])

    async def wait(self) -> int:
        while self.returncode is None:
            if self._asking is not None:  # another waiter asks: its answer is ours (if it gets one)
                await self._asking.wait()
                continue
            self._asking = asking = trio.Event()
            try:
                try:
                    code = await self.zygote.wait_exit.ask(self.pid)
                except Exception:  # noqa: BLE001 - the zygote is gone: its orphan is watched through its pidfd
                    if self._pidfd is not None:
                        await trio.lowlevel.wait_readable(self._pidfd)
                    code, self.status_lost = 1, True
                self.returncode = code
                self._close_pidfd()
            finally:
                self._asking = None
                asking.set()
        return self.returncode

    def __del__(self) -> None:  # a worker actor killed outright never waited
        if self._pidfd is not None:
            os.close(self._pidfd)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            fd, self._pidfd = self._pidfd, None
            trio.lowlevel.notify_closing(fd)
            os.close(fd)

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:  # exited; its status is on its way
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)
