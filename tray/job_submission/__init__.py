"""Ray's job submission API: run a shell command (``python script.py``) on the cluster's
head node as a supervised job, watch it, read its logs, stop it.

    from tray.job_submission import JobSubmissionClient, JobStatus
    client = JobSubmissionClient("http://127.0.0.1:8265")
    sid = client.submit_job(entrypoint="python script.py", runtime_env={"working_dir": "./"})

Needs ``pip install "tray[default]"`` (the dashboard serves the API). ``manager`` (what the
dashboard's job endpoints run) and ``runtime_env`` (checking, packing and preparing runtime
environments: ``tray.lowlevel.runtime_envs``, which tasks and actors use too) are the modules
the dashboard uses; ``local_dashboards()`` finds this machine's clusters' dashboards. A job's
runtime_env is its driver's too: the tasks and actors the entrypoint submits run in it.
"""

from __future__ import annotations

from ._client import JobSubmissionClient, local_dashboards
from ._models import JobDetails, JobInfo, JobStatus

__all__ = ["JobDetails", "JobInfo", "JobStatus", "JobSubmissionClient", "local_dashboards"]
