"""The job supervisor: a detached actor on the head node that runs one job's entrypoint.

It prepares the job's runtime environment, starts the entrypoint as a shell command in a
process group of its own (led by ``_leader.py``, which takes the group down with it)
(``TRAY_ADDRESS`` and the cluster token set, so the script's
``tray.init()`` joins this cluster), sends its output to the job's log file, and records
each state change in the job's KV record. ``stop`` sends SIGTERM to the whole group, then
SIGKILL after a grace period. An async actor: ``stop`` and ``ping`` answer while ``run``
waits for the process (blocking work, the KV asks and the environment's setup, runs in
threads so the actor's loop stays free).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from .. import lowlevel
from . import runtime_env as _runtime_env
from ._models import INFO_PREFIX, KV_NAMESPACE, JobInfo, JobStatus

STOP_GRACE_S = 3.0  # Ray's RAY_JOB_STOP_WAIT_TIME_S default
LEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_leader.py")  # run by path: no tray import
# Variables of the worker hosting this actor that must not leak into the job's driver.
WORKER_ONLY = ("TRAY_NAMESPACE", "TRAY_JOB_ID", "TRAY_WORKER_ID", _runtime_env.WORKER_ENV_VAR)


def now_ms() -> int:
    return int(time.time() * 1000)


def load_info(submission_id: str) -> JobInfo | None:
    raw = lowlevel.kv_get(INFO_PREFIX + submission_id, namespace=KV_NAMESPACE)
    return None if raw is None else JobInfo.loads(raw)


def save_info(info: JobInfo) -> None:
    lowlevel.kv_put(INFO_PREFIX + str(info.submission_id), info.dumps(), namespace=KV_NAMESPACE)


class JobSupervisor:
    """Runs one job (made by the dashboard's job manager)."""

    def __init__(self, submission_id: str, cluster_address: str, token: str, resources_dir: str) -> None:
        self.submission_id = submission_id
        self.cluster_address = cluster_address
        self.token = token
        self.resources_dir = resources_dir  # where runtime envs are prepared (the head's session dir)
        self.proc: asyncio.subprocess.Process | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def ping(self) -> int:
        return os.getpid()

    def _update(self, **changes: Any) -> JobInfo:
        with self.lock:
            info = load_info(self.submission_id)
            assert info is not None, f"job {self.submission_id} has no record"
            if info.status.is_terminal():
                return info  # a final state is final
            for k, v in changes.items():
                setattr(info, k, v)
            save_info(info)
            return info

    async def _set(self, **changes: Any) -> JobInfo:
        return await asyncio.to_thread(lambda: self._update(**changes))

    async def run(self) -> str:
        """Run the job to its end; its final status."""
        info = await asyncio.to_thread(load_info, self.submission_id)
        assert info is not None, f"job {self.submission_id} has no record"
        try:
            prepared = await asyncio.to_thread(
                _runtime_env.prepare, info.runtime_env, self.resources_dir,
                lambda name: lowlevel.kv_get(name, namespace=_runtime_env.PKG_NAMESPACE))
        except Exception as exc:  # noqa: BLE001 - the job's record says what went wrong
            await self._set(status=JobStatus.FAILED, end_time=now_ms(), error_type="RUNTIME_ENV_SETUP_FAILED",
                            message=f"runtime_env setup failed: {exc}")
            return JobStatus.FAILED.value
        if self.stopping.is_set():
            await self._set(status=JobStatus.STOPPED, end_time=now_ms(), message="Job was intentionally stopped.")
            return JobStatus.STOPPED.value
        base = {k: v for k, v in os.environ.items() if k not in WORKER_ONLY}
        env = _runtime_env.apply_env(base, prepared)
        env["TRAY_ADDRESS"] = self.cluster_address
        env["RAY_ADDRESS"] = self.cluster_address
        env["TRAY_CLUSTER_TOKEN"] = self.token
        env["TRAY_JOB_SUBMISSION_ID"] = self.submission_id
        env["PYTHONUNBUFFERED"] = "1"
        if info.runtime_env:  # the driver's tasks and actors run in the job's env too (Ray's rule)
            env[_runtime_env.JOB_ENV_VAR] = json.dumps(info.runtime_env)
        assert info.log_path is not None
        os.makedirs(os.path.dirname(info.log_path), exist_ok=True)
        with open(info.log_path, "ab") as log:
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable, LEADER, str(os.getpid()), info.entrypoint, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=env, cwd=prepared.cwd,
                    start_new_session=True)  # its own process group, for stop
            except OSError as exc:
                await self._set(status=JobStatus.FAILED, end_time=now_ms(),
                                error_type="JOB_ENTRYPOINT_COMMAND_START_ERROR",
                                message=f"the entrypoint could not start: {exc}")
                return JobStatus.FAILED.value
        await self._set(status=JobStatus.RUNNING, driver_pid=self.proc.pid, message="Job is currently running.")
        if self.stopping.is_set():
            await self._kill_group()
        code = await self.proc.wait()
        if self.stopping.is_set():
            final = await self._set(status=JobStatus.STOPPED, end_time=now_ms(), driver_exit_code=code,
                                    message="Job was intentionally stopped.")
        elif code == 0:
            final = await self._set(status=JobStatus.SUCCEEDED, end_time=now_ms(), driver_exit_code=0,
                                    message="Job finished successfully.")
        else:
            final = await self._set(status=JobStatus.FAILED, end_time=now_ms(), driver_exit_code=code,
                                    error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                                    message=f"Job entrypoint command failed with exit code {code}, "
                                            f"last available logs:\n{tail(info.log_path, 10)}")
        self._reap_group()
        return final.status.value

    async def stop(self) -> bool:
        """Stop the job: SIGTERM to its process group, SIGKILL after ``STOP_GRACE_S``."""
        self.stopping.set()
        if self.proc is not None and self.proc.returncode is None:
            await self._kill_group()
        return True

    async def _kill_group(self) -> None:
        proc = self.proc
        assert proc is not None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            pass
        self._reap_group()

    def _reap_group(self) -> None:
        """SIGKILL whatever is left of the job's process group (its children outliving it)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of a file (within its last 64 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except OSError:
        return ""
