"""Worker processes, each owned by a ``WorkerProcess`` actor under the pool's supervisor.

The actor starts the process, copies its output to the driver's terminal, and exits
(abnormally) when the process does, so the scheduler, which monitors it, learns of a
worker's death from the kernel's ordinary ``on_down``. Stopping the actor stops the
process: its stdin closes (the worker exits on that), then SIGTERM, then SIGKILL.
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
from ..exceptions import WorkerCrashedError

log = logging.getLogger("tray.cluster")

GRACE_S = 2.0


class WorkerProcess(Actor):
    """One worker process of the node."""

    def __init__(self, node_address: str, env: dict[str, str], log_to_driver: bool, worker_id: str) -> None:
        self.worker_id = worker_id
        self.node_address = node_address
        self.env = env
        self.log_to_driver = log_to_driver
        self.proc: trio.Process | None = None

    async def on_start(self) -> None:
        self.proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tray.core._worker", self.node_address, self.worker_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        self.start_soon(self._copy, self.proc.stdout, sys.stdout)
        self.start_soon(self._copy, self.proc.stderr, sys.stderr)
        self.start_soon(self._wait)

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

    async def _copy(self, stream: Any, out: Any) -> None:
        """Copy the worker's output (already prefixed with its origin) to the driver's."""
        if stream is None:
            return
        async for chunk in stream:
            if self.log_to_driver:
                out.write(chunk.decode(errors="replace"))
                out.flush()

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
