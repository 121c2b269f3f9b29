"""Ray's job records: ``JobStatus`` and ``JobInfo`` (what ``JobSubmissionClient`` returns).

A job's record lives in the cluster's KV table (namespace ``_tray_jobs``) as JSON, written
by whoever changes its state: the dashboard when it is submitted, the job's supervisor
actor while it runs. Pure data: no I/O here.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KV_NAMESPACE = "_tray_jobs"
INFO_PREFIX = "job_info:"
ACTOR_NAMESPACE = "_tray_jobs"


def actor_name(submission_id: str) -> str:
    """The job supervisor actor's name (in ``ACTOR_NAMESPACE``)."""
    return f"_tray_job_supervisor_{submission_id}"


class JobStatus(str, enum.Enum):  # noqa: UP042 - Ray's definition: str(status) is "JobStatus.X"
    """Ray's job states; a job ends STOPPED, SUCCEEDED or FAILED."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return f"{self.value}"

    def is_terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED)


@dataclass
class JobInfo:
    """One submitted job, as Ray's ``JobInfo``/``JobDetails`` describe it (times in ms)."""

    status: JobStatus
    entrypoint: str
    submission_id: str | None = None
    job_id: str | None = None
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None
    driver_pid: int | None = None
    log_path: str | None = None
    type: str = "SUBMISSION"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobInfo:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["status"] = JobStatus(data["status"])
        return cls(**kwargs)

    def dumps(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def loads(cls, raw: bytes) -> JobInfo:
        return cls.from_json(json.loads(raw))


# Ray's name for the REST model of a job is JobDetails; here they are one class.
JobDetails = JobInfo
