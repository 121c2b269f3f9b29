"""Ray's job submission API: run a shell command (``python script.py``) on the cluster's
head node as a supervised job, watch it, read its logs, stop it.

    from tray.job_submission import JobSubmissionClient, JobStatus
    client = JobSubmissionClient("http://127.0.0.1:8265")
    sid = client.submit_job(entrypoint="python script.py", runtime_env={"working_dir": "./"})

Needs ``pip install "tray[default]"`` (the dashboard serves the API).
"""

from __future__ import annotations

from ._client import JobSubmissionClient
from ._models import JobDetails, JobInfo, JobStatus

__all__ = ["JobDetails", "JobInfo", "JobStatus", "JobSubmissionClient"]
