"""Worker processes, each owned by a ``WorkerProcess`` actor under the pool's supervisor.

The actor starts the process, copies its output where it belongs (the driver's terminal
when the driver hosts the node; else the worker's log files and the driver of the job it
runs), and exits (abnormally) when the process does, so the scheduler, which monitors
it, learns of a worker's death from the kernel's ordinary ``on_down``. Stopping the
actor stops the process: its stdin closes (the worker exits on that), then SIGTERM,
then SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from typing import Any

import trio

from ..actors import Actor
from ..exceptions import MailboxFull, RayError, WorkerCrashedError

log = logging.getLogger("tray.cluster")

GRACE_S = 2.0


class WorkerProcess(Actor):
    """One worker process of the node."""

    def __init__(self, node_address: str, env: dict[str, str], echo: bool, log_dir: str | None,
                 worker_id: str) -> None:
        self.worker_id = worker_id
        self.node_address = node_address
        self.env = env
        self.echo = echo  # copy the output to this process's stdout/stderr
        self.log_dir = log_dir  # else (or also) to files there
        self.sink: Any = None  # the owner actor of the driver of the job this worker runs
        self.proc: trio.Process | None = None

    async def on_start(self) -> None:
        self.proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tray.core._worker", self.node_address, self.worker_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        for stream, echo, ext in ((self.proc.stdout, sys.stdout, "out"), (self.proc.stderr, sys.stderr, "err")):
            log = None
            if self.log_dir is not None:
                log = open(os.path.join(self.log_dir, f"worker-{self.worker_id}-{self.proc.pid}.{ext}"), "a")
            self.start_soon(self._copy, stream, echo if self.echo else None, log, ext == "err")
        self.start_soon(self._wait)

    def set_job(self, job: str, sink: Any) -> None:
        """The worker now runs ``job``'s code: its output also goes to that job's driver."""
        self.sink = sink

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill_process(self) -> None:
        """SIGKILL the process (``tray.cancel(force=True)``); this actor exits when it is gone."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def _wait(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        self._remove_socket()
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise WorkerCrashedError(f"worker process {self.proc.pid} ({self.worker_id}) {how}")

    async def _copy(self, stream: Any, echo: Any, log: Any, err: bool) -> None:
        """Copy the worker's output (already prefixed with its origin) to where it goes."""
        if stream is None:
            return
        try:
            async for chunk in stream:
                text = chunk.decode(errors="replace")
                if echo is not None:
                    echo.write(text)
                    echo.flush()
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
        with trio.move_on_after(GRACE_S):
            await proc.wait()
            return
        proc.terminate()
        with trio.move_on_after(GRACE_S):
            await proc.wait()
            return
        proc.kill()
        await proc.wait()
