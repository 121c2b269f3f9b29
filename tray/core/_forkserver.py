"""The zygote: a worker interpreter, imports done, that forks the node's workers on request.

    python -m tray.core._worker --zygote      (stdin: a SOCK_SEQPACKET socket to its node)

Starting a worker is mostly an interpreter start and tray's imports (about 0.1 s of CPU);
a fork of a process that has done both, and nothing else, starts one in a millisecond or
two. The zygote is a fresh interpreter started by the node with a default worker's
environment (never a fork of the driver, which may hold threads, CUDA or big memory); it
starts no thread and no loop, so a fork of it is a clean start.

Each request carries the worker's arguments and its stdin, stdout and stderr (the node's
pipes, passed as file descriptors); the zygote answers with the child's pid and a pidfd
(the node's handle on the child, immune to pid reuse), and reports
each child's exit status as a Popen ``returncode`` (negative: killed by that signal) —
it is the children's parent, so only it can. Its children outlive it (the node watches
them through pidfds then); they die with their node as every worker does, when their
stdin closes. The zygote exits when its node closes the socket (or dies).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable

MAX_MESSAGE = 1 << 16


def serve(run_worker: Callable[[list[str]], None]) -> None:
    """Serve fork requests on stdin until the node closes it; each child runs ``run_worker(argv)``."""
    if threading.active_count() != 1:  # a fork copies one thread: the others' locks would stay held
        sys.exit(f"tray: the zygote cannot fork workers: {threading.active_count() - 1} thread(s) started in it "
                 f"(by a sitecustomize or .pth file?); the node spawns its workers instead")
    sock = socket.socket(fileno=os.dup(0))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of each exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is for the workers
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                os.read(wake_r, 4096)
                _reap(sock)
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 3)
            except ConnectionError:
                data, fds = b"", []
            if not data:  # the node is gone (or done): so are we (our children go when their stdin closes)
                os._exit(0)
            req_id, argv = pickle.loads(data)
            pid = os.fork()
            if pid == 0:
                _child(sock, (wake_r, wake_w), fds, argv, run_worker)
            for fd in fds:
                os.close(fd)
            try:  # a pidfd, opened before we could reap the child: the node's handle on it, whatever comes
                pidfds = [os.pidfd_open(pid)]
            except OSError:
                pidfds = []
            _send(sock, ("forked", req_id, pid), pidfds)
            for fd in pidfds:
                os.close(fd)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, ("exited", pid, os.waitstatus_to_exitcode(status)))


def _send(sock: socket.socket, message: tuple, fds: list[int] | None = None) -> None:
    try:
        socket.send_fds(sock, [pickle.dumps(message)], fds or [])
    except OSError:  # the node is gone: the next read says so
        pass


def _child(sock: socket.socket, wake: tuple[int, int], fds: list[int], argv: list[str],
           run_worker: Callable[[list[str]], None]) -> None:
    """In the forked child: become a worker started as ``python -m tray.core._worker ARGV``."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sock.close()
        for fd in wake:
            os.close(fd)
        for target, fd in enumerate(fds):  # stdin, stdout, stderr: the node's pipes
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = [sys.argv[0], *argv]
        run_worker(argv)
    except BaseException:  # noqa: BLE001 - a child must never return into the zygote's loop
        import traceback

        traceback.print_exc()
    finally:
        os._exit(1)
