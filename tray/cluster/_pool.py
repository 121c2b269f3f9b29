"""Worker processes, each owned by a ``WorkerProcess`` actor under the pool's supervisor.

The actor starts the process, copies its output where it belongs (the worker's log files
in the node's session directory, always; the driver's terminal when the driver hosts the
node, else the driver of the job it runs), and exits (abnormally) when the process does,
so the scheduler, which monitors it, learns of a worker's death from the kernel's
ordinary ``on_down``: the reason says how it ended (exit code or signal) and carries the
last lines of its stderr. Stopping the actor stops the process: its
stdin closes (the worker exits on that), then SIGTERM, then SIGKILL.

A worker of a runtime_env starts in it: the env's interpreter (a virtualenv's), working
directory, import path and variables, with the env itself in ``TRAY_RUNTIME_ENV`` (its
nested tasks inherit it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from typing import Any

import trio

from ..actors import Actor
from ..exceptions import MailboxFull, RayError, WorkerCrashedError
from ._logs import log_dir_of, log_name
from ._runtime_env import WORKER_ENV_VAR, Prepared, apply_env
from ._zygote import WORKER_MODULE, ZYGOTE_NAME, ForkedProcess

log = logging.getLogger("tray.cluster")

GRACE_S = 2.0
TAIL_LINES = 10  # of a dead worker's stderr, in the error its callers get
EOF_WAIT_S = 1.0  # for the rest of a dead worker's output (a child it left may hold the pipe)


def _echo(out: Any, text: str) -> None:
    """Write to a terminal that may be gone (closed, or a pipe nobody reads): never fatal."""
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        pass


BREAKPOINT_HOOK = "tray.debug.set_trace"  # a worker's sys.breakpointhook, imported when first used (a library)


def default_worker_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a default worker (and of the zygote that forks them) of a node
    whose workers get ``env``."""
    env = {"PYTHONBREAKPOINT": BREAKPOINT_HOOK, **env}  # breakpoint() in a task: tray's debugger
    env.pop(WORKER_ENV_VAR, None)  # a node started inside an env worker: its workers are default ones
    return env


class WorkerProcess(Actor):
    """One worker process of the node."""

    def __init__(self, node_address: str, env: dict[str, str], echo: bool, log_dir: str | None,
                 worker_id: str, setup: tuple[Prepared, dict[str, Any]] | None = None) -> None:
        self.worker_id = worker_id
        self.node_address = node_address
        self.env = env
        self.setup = setup  # (the prepared runtime_env, the runtime_env) it runs in; None: the default
        self.echo = echo  # copy the output to this process's stdout/stderr
        self.log_dir = log_dir or log_dir_of({"address": node_address})  # and to files there
        self.sink: Any = None  # the owner actor of the driver of the job this worker runs
        self.proc: trio.Process | ForkedProcess | None = None
        self.err_tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.err_done = trio.Event()  # its stderr reached its end
        self.ready = False  # it registered with the scheduler (and from then on watches its stdin)

    async def on_start(self) -> None:
        self.proc = await self._fork() if self.setup is None else None
        if self.proc is None:
            self.proc = await self._spawn()
        if self.log_dir is not None:
            os.makedirs(self.log_dir, exist_ok=True)
        for stream, ext in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            log = None
            if self.log_dir is not None:
                log = open(os.path.join(self.log_dir, log_name(self.worker_id, self.proc.pid, ext)), "a")
            self.start_soon(self._copy, stream, log, ext == "err")
        self.start_soon(self._wait)

    async def _fork(self) -> ForkedProcess | None:
        """A default worker, forked by the node's zygote; None if there is none (any more)."""
        zygote = self.system.lookup(ZYGOTE_NAME)
        if zygote is None:
            return None
        try:
            return await ForkedProcess.start(zygote, [self.node_address, self.worker_id])
        except (RayError, RuntimeError) as exc:  # it died: this worker starts as its own interpreter
            log.warning("the zygote could not start worker %s (%s); spawning it instead", self.worker_id, exc)
            return None

    async def _spawn(self) -> trio.Process:
        """A worker started as its own interpreter: one of a runtime_env, or any without a zygote."""
        env = default_worker_env(self.env)
        python, cwd = sys.executable, None
        if self.setup is not None:
            prepared, runtime_env = self.setup
            env = apply_env(env, prepared)
            env[WORKER_ENV_VAR] = json.dumps(runtime_env)
            python, cwd = prepared.python or python, prepared.cwd
        return await trio.lowlevel.open_process(
            [python, "-m", WORKER_MODULE, self.node_address, self.worker_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )

    def set_job(self, job: str, sink: Any) -> None:
        """The worker now runs ``job``'s code: its output also goes to that job's driver."""
        self.sink = sink

    def registered(self) -> None:
        """The worker is up: it exits on its own when its stdin closes (before, it is still starting)."""
        self.ready = True

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill_process(self) -> None:
        """SIGKILL the process (``tray.cancel(force=True)``); this actor exits when it is gone."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def _wait(self) -> None:
        """Exit when the process does, with a reason that says how, and its last stderr lines."""
        assert self.proc is not None
        code = await self.proc.wait()
        self._remove_socket()
        with trio.move_on_after(EOF_WAIT_S):
            await self.err_done.wait()
        if getattr(self.proc, "status_lost", False):
            how = "exited after the zygote that forked it (which alone could say how)"
        elif code < 0:
            how = f"was killed by {signal.Signals(-code).name if -code in signal.valid_signals() else -code}"
        else:
            how = f"exited with code {code}"
        err = WorkerCrashedError(f"worker process {self.proc.pid} ({self.worker_id}) {how}")
        err.stderr_tail = list(self.err_tail)  # type: ignore[attr-defined]
        await self.stop(err)  # a reason, not a raise: the pool logs one line, not a traceback

    async def _copy(self, stream: Any, log: Any, err: bool) -> None:
        """Copy the worker's output (already prefixed with its origin) to where it goes."""
        if stream is None:
            return
        partial = ""  # an unfinished last line, for the stderr tail
        try:
            async for chunk in stream:
                text = chunk.decode(errors="replace")
                if err:
                    lines = (partial + text).split("\n")
                    partial = lines.pop()[-1000:]
                    self.err_tail.extend(lines)
                if self.echo:  # this process's stdout/stderr as they are now (they may have been swapped)
                    _echo(sys.stderr if err else sys.stdout, text)
                if log is not None:
                    log.write(text)
                    log.flush()
                if self.sink is not None:
                    try:
                        self.sink.worker_output.tell_nowait(text, err)
                    except MailboxFull:  # the driver is backed up: the log file has it
                        pass
                    except RayError:  # the driver is gone
                        self.sink = None
        finally:
            if log is not None:
                log.close()
            if err:
                if partial:
                    self.err_tail.append(partial)
                self.err_done.set()

    def _remove_socket(self) -> None:
        """A worker killed hard cannot remove its socket file: its node does."""
        if self.node_address.startswith("unix://"):
            path = os.path.join(os.path.dirname(self.node_address[len("unix://"):]), f"{self.worker_id}.sock")
            with contextlib.suppress(OSError):
                os.unlink(path)

    async def on_stop(self) -> None:
        await self._stop_process()
        self._remove_socket()

    async def _stop_process(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        try:
            if proc.stdin is not None:
                await proc.stdin.aclose()
        except trio.BrokenResourceError:
            pass
        if self.ready:  # a worker still starting (importing) would only notice once up: it goes at once
            with trio.move_on_after(GRACE_S):
                await proc.wait()
                return
        proc.terminate()
        with trio.move_on_after(GRACE_S):
            await proc.wait()
            return
        proc.kill()
        await proc.wait()
