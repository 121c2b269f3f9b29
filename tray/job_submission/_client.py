"""``JobSubmissionClient``: Ray's job API client, over HTTP to the cluster's dashboard.

Every request carries the cluster token (``Authorization: Bearer``), taken from
``headers``, else ``TRAY_CLUSTER_TOKEN``, else the session files of a cluster started on
this machine by this user. ``working_dir`` and ``py_modules`` that are local paths are
packed and uploaded (once per content) before the job is submitted.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from .. import lowlevel
from . import runtime_env as _runtime_env
from ._models import JobDetails, JobInfo, JobStatus

SESSION_GLOB = "tray-session-*"
TIMEOUT_S = 60.0


def local_dashboards() -> list[dict[str, Any]]:
    """``{url, token, session_dir}`` of the dashboards of clusters running on this machine, newest first."""
    found = []
    for d in glob.glob(os.path.join(tempfile.gettempdir(), SESSION_GLOB)):
        try:
            with open(os.path.join(d, "dashboard.json")) as f:
                dash = json.load(f)
            with open(os.path.join(d, "session.json")) as f:
                sess = json.load(f)
            os.kill(int(dash["pid"]), 0)
            found.append({"url": dash["url"], "token": sess["token"], "session_dir": d,
                          "kind": sess.get("kind", "driver"),
                          "mtime": os.path.getmtime(os.path.join(d, "session.json"))})
        except (OSError, ValueError, KeyError):
            continue
    # a `tray start` head before a driver's own node, then the newest
    return sorted(found, key=lambda s: (s["kind"] != "head", -s["mtime"]))


def resolve(address: str | None) -> tuple[str, str | None]:
    """The dashboard URL for ``address`` (None/"auto": ``TRAY_ADDRESS``/``RAY_ADDRESS`` if they
    are http URLs, else this machine's cluster), and the token found for it, if any."""
    token = os.environ.get("TRAY_CLUSTER_TOKEN")
    if address in (None, "", "auto"):
        for var in ("TRAY_DASHBOARD_ADDRESS", "TRAY_ADDRESS", "RAY_ADDRESS"):
            value = os.environ.get(var, "")
            if value.startswith(("http://", "https://")):
                address = value
                break
    local = local_dashboards()
    if address in (None, "", "auto"):
        if not local:
            raise ConnectionError("no tray dashboard found on this machine: start a cluster with `tray start --head` "
                                  "(or tray.init()), or pass its address (http://HOST:8265)")
        return local[0]["url"], token or local[0]["token"]
    assert address is not None
    if "://" not in address:
        address = "http://" + address
    if not address.startswith(("http://", "https://")):
        raise ValueError(f"the job API's address is the dashboard's http://HOST:PORT, got {address!r}")
    address = address.rstrip("/")
    if token is None:
        token = next((s["token"] for s in local if s["url"] == address), None)
    return address, token


class JobSubmissionClient:
    """Submit and manage jobs on a tray cluster through its dashboard (Ray's API).

    ``address``: the dashboard's ``http://HOST:PORT`` (default: this machine's cluster);
    ``headers``: extra HTTP headers (an ``Authorization`` here overrides the token found).
    """

    def __init__(self, address: str | None = None, create_cluster_if_needed: bool = False,
                 cookies: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                 headers: dict[str, Any] | None = None, verify: Any = True) -> None:
        httpx = lowlevel.require("httpx", "default")
        self.address, token = resolve(address)
        self._headers = dict(headers or {})
        if token and not any(k.lower() == "authorization" for k in self._headers):
            self._headers["Authorization"] = f"Bearer {token}"
        self._default_metadata = dict(metadata or {})
        self._cookies, self._verify = cookies, verify
        self._http = httpx.Client(base_url=self.address, headers=self._headers, cookies=cookies, verify=verify,
                                  timeout=TIMEOUT_S)
        self._request("GET", "/api/version")  # fail now if unreachable or refused

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"failed to connect to the tray dashboard at {self.address}: {exc}") from None
        if r.status_code == 401:
            raise PermissionError(f"the tray dashboard at {self.address} refused the request (401): it needs the "
                                  f"cluster token; set TRAY_CLUSTER_TOKEN to the token `tray start --head` printed")
        return r

    @staticmethod
    def _check(r: Any) -> Any:
        if r.status_code >= 400:
            try:
                msg = r.json().get("msg") or r.text
            except ValueError:
                msg = r.text
            raise RuntimeError(f"Request failed with status code {r.status_code}: {msg}")
        return r.json()

    def _upload(self, runtime_env: dict[str, Any] | None) -> dict[str, Any]:
        def exists(name: str) -> bool:
            return self._request("GET", f"/api/packages/{name}").status_code == 200

        def put(name: str, data: bytes) -> None:
            self._check(self._request("PUT", f"/api/packages/{name}", content=data))

        return _runtime_env.upload(runtime_env, exists, put)

    def submit_job(self, *, entrypoint: str, job_id: str | None = None, runtime_env: dict[str, Any] | None = None,
                   metadata: dict[str, str] | None = None, submission_id: str | None = None,
                   entrypoint_num_cpus: float | None = None, entrypoint_num_gpus: float | None = None,
                   entrypoint_memory: int | None = None,
                   entrypoint_resources: dict[str, float] | None = None) -> str:
        """Submit ``entrypoint`` (a shell command) to run on the head node; its submission id."""
        if job_id is not None and submission_id is not None:
            raise ValueError("give submission_id or (the deprecated) job_id, not both")
        body = {"entrypoint": entrypoint, "submission_id": submission_id or job_id,
                "runtime_env": self._upload(runtime_env), "metadata": {**self._default_metadata, **(metadata or {})},
                "entrypoint_num_cpus": entrypoint_num_cpus, "entrypoint_num_gpus": entrypoint_num_gpus,
                "entrypoint_memory": entrypoint_memory, "entrypoint_resources": entrypoint_resources}
        return self._check(self._request("POST", "/api/jobs/", json=body))["submission_id"]

    def stop_job(self, job_id: str) -> bool:
        """Ask the job to stop (SIGTERM, then SIGKILL); False if it had already ended."""
        return self._check(self._request("POST", f"/api/jobs/{job_id}/stop"))["stopped"]

    def delete_job(self, job_id: str) -> bool:
        """Forget a job that has ended (its record and logs)."""
        return self._check(self._request("DELETE", f"/api/jobs/{job_id}"))["deleted"]

    def get_job_info(self, job_id: str) -> JobDetails:
        return JobInfo.from_json(self._check(self._request("GET", f"/api/jobs/{job_id}")))

    def list_jobs(self) -> list[JobDetails]:
        return [JobInfo.from_json(j) for j in self._check(self._request("GET", "/api/jobs/"))]

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        """Everything the job's entrypoint has printed so far (stdout and stderr)."""
        out, offset = [], 0
        while True:
            data = self._check(self._request("GET", f"/api/jobs/{job_id}/logs", params={"offset": offset}))
            out.append(data["logs"])
            if not data["logs"] or data["offset"] == offset:
                return "".join(out)
            offset = data["offset"]

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it comes, until the job ends."""
        import httpx

        async with httpx.AsyncClient(base_url=self.address, headers=self._headers, cookies=self._cookies,
                                     verify=self._verify, timeout=httpx.Timeout(TIMEOUT_S, read=None)) as client:
            async with client.stream("GET", f"/api/jobs/{job_id}/logs/tail") as r:
                if r.status_code >= 400:
                    await r.aread()
                    self._check(r)
                async for chunk in r.aiter_text():
                    if chunk:
                        yield chunk

    def get_version(self) -> str:
        return self._check(self._request("GET", "/api/version"))["version"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JobSubmissionClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
