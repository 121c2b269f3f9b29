"""The job manager: what the dashboard's job endpoints do, in a driver of the cluster.

Submitting writes the job's record (PENDING) to the KV table, then makes its supervisor: a
detached, named actor pinned to the head node (where the job's log file is written and the
dashboard reads it), with the entrypoint's resources. When ``run`` returns, the manager
kills the supervisor (its job is done); a supervisor that dies before that (its worker
crashed) leaves a record that says so on the next look.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from typing import Any

import tray

from .. import lowlevel
from ..util.scheduling_strategies import NodeAffinitySchedulingStrategy
from . import runtime_env as _runtime_env
from ._models import ACTOR_NAMESPACE, INFO_PREFIX, KV_NAMESPACE, JobInfo, JobStatus, actor_name
from ._supervisor import JobSupervisor, load_info, now_ms, save_info

_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
Supervisor = tray.remote(JobSupervisor)


class JobManager:
    """Submits, watches, stops and deletes jobs; ``log_dir``: the head's logs directory."""

    def __init__(self, log_dir: str, resources_dir: str) -> None:
        self.log_dir = log_dir
        self.resources_dir = resources_dir
        self.lock = threading.Lock()

    def _head_node(self) -> str:
        heads = [n for n in lowlevel.cluster_state("nodes") if n.get("is_head_node") and n["state"] == "ALIVE"]
        if not heads:
            raise RuntimeError("the cluster has no alive head node to run jobs on")
        return heads[0]["node_id"]

    def submit(self, entrypoint: str, submission_id: str | None = None, runtime_env: dict[str, Any] | None = None,
               metadata: dict[str, str] | None = None, entrypoint_num_cpus: float | None = None,
               entrypoint_num_gpus: float | None = None, entrypoint_memory: int | None = None,
               entrypoint_resources: dict[str, float] | None = None) -> str:
        if not isinstance(entrypoint, str) or not entrypoint.strip():
            raise ValueError("entrypoint must be a non-empty shell command")
        submission_id = submission_id or f"traysubmit_{uuid.uuid4().hex[:16]}"
        if not _ID.match(submission_id):
            raise ValueError(f"submission_id {submission_id!r}: use letters, digits, '_', '-', '.' (at most 128)")
        runtime_env = _runtime_env.validate(runtime_env)
        if metadata is not None and not (isinstance(metadata, dict) and
                                         all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise ValueError("metadata must be a dict of str to str")
        for name, value in (("entrypoint_num_cpus", entrypoint_num_cpus), ("entrypoint_num_gpus", entrypoint_num_gpus),
                            ("entrypoint_memory", entrypoint_memory)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        info = JobInfo(status=JobStatus.PENDING, entrypoint=entrypoint, submission_id=submission_id,
                       job_id=submission_id, message="Job has not started yet.", start_time=now_ms(),
                       metadata=metadata or {}, runtime_env=runtime_env, entrypoint_num_cpus=entrypoint_num_cpus,
                       entrypoint_num_gpus=entrypoint_num_gpus, entrypoint_memory=entrypoint_memory,
                       entrypoint_resources=entrypoint_resources,
                       log_path=os.path.join(self.log_dir, f"job-driver-{submission_id}.log"))
        head = self._head_node()
        info.driver_node_id = head
        existed = lowlevel.kv_put(INFO_PREFIX + submission_id, info.dumps(), namespace=KV_NAMESPACE, overwrite=False)
        if existed:
            raise ValueError(f"a job with submission_id {submission_id!r} already exists")
        rt = lowlevel.runtime_info()
        try:
            actor = Supervisor.options(
                name=actor_name(submission_id), namespace=ACTOR_NAMESPACE, lifetime="detached",
                num_cpus=entrypoint_num_cpus or 0, num_gpus=entrypoint_num_gpus or 0, memory=entrypoint_memory or None,
                resources=entrypoint_resources or None,
                scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False),
            ).remote(submission_id, rt.address, rt.token, self.resources_dir)
            ref = actor.run.remote()
        except Exception as exc:
            info.status, info.end_time = JobStatus.FAILED, now_ms()
            info.message = f"the job supervisor could not start: {exc}"
            info.error_type = "JOB_SUPERVISOR_ACTOR_START_FAILURE"
            save_info(info)
            raise
        threading.Thread(target=self._reap, args=(submission_id, actor, ref), daemon=True,
                         name=f"tray-job-{submission_id}").start()
        return submission_id

    def _reap(self, submission_id: str, actor: Any, ref: Any) -> None:
        """Wait for the job's end, then let its supervisor go."""
        try:
            tray.get(ref)
        except Exception:  # noqa: BLE001 - the supervisor died: its record says so on the next look
            self._fail_if_unfinished(submission_id, "the job's supervisor actor died")
        try:
            tray.kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _fail_if_unfinished(self, submission_id: str, why: str) -> None:
        with self.lock:
            info = load_info(submission_id)
            if info is not None and not info.status.is_terminal():
                info.status, info.end_time = JobStatus.FAILED, now_ms()
                info.message, info.error_type = why, "JOB_SUPERVISOR_ACTOR_DIED"
                save_info(info)

    def get(self, submission_id: str) -> JobInfo | None:
        return load_info(submission_id)

    def list(self) -> list[JobInfo]:
        out = []
        for key in lowlevel.kv_keys(INFO_PREFIX, namespace=KV_NAMESPACE):
            raw = lowlevel.kv_get(key, namespace=KV_NAMESPACE)
            if raw is not None:
                out.append(JobInfo.loads(raw))
        return sorted(out, key=lambda i: i.start_time or 0)

    def _actor(self, submission_id: str) -> Any:
        try:
            return tray.get_actor(actor_name(submission_id), namespace=ACTOR_NAMESPACE)
        except ValueError:
            return None

    def stop(self, submission_id: str) -> bool:
        """Stop a job; False if it already ended. KeyError if there is no such job."""
        info = load_info(submission_id)
        if info is None:
            raise KeyError(submission_id)
        if info.status.is_terminal():
            return False
        actor = self._actor(submission_id)
        if actor is None:
            self._fail_if_unfinished(submission_id, "the job's supervisor actor is gone")
            return False
        tray.get(actor.stop.remote(), timeout=30)
        return True

    def delete(self, submission_id: str) -> bool:
        """Forget a finished job (its record and log); ValueError if it still runs."""
        info = load_info(submission_id)
        if info is None:
            raise KeyError(submission_id)
        if not info.status.is_terminal():
            raise ValueError(f"job {submission_id} is {info.status.value}: stop it before deleting it")
        lowlevel.kv_del(INFO_PREFIX + submission_id, namespace=KV_NAMESPACE)
        if info.log_path:
            try:
                os.unlink(info.log_path)
            except OSError:
                pass
        return True

    def logs(self, submission_id: str, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[str, int]:
        """The job's log text from ``offset`` (up to ``max_bytes``), and where it ends."""
        info = load_info(submission_id)
        if info is None:
            raise KeyError(submission_id)
        if not info.log_path:
            return "", 0
        try:
            with open(info.log_path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                start = max(0, size + offset) if offset < 0 else min(offset, size)
                f.seek(start)
                data = f.read(max_bytes)
        except FileNotFoundError:
            return "", 0
        return data.decode(errors="replace"), start + len(data)
