"""The job API against a real head: a job with a working_dir and env_vars succeeds and its
logs hold its output; a long job is stopped (its whole process group); a failing one
fails with its exit code; the CLI; runtime_env pip into a cached virtualenv."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tray.job_submission import JobStatus, JobSubmissionClient
from tray.job_submission import runtime_env as _runtime_env

WAIT_S = 120.0


def wait_done(client: JobSubmissionClient, sid: str, timeout: float = WAIT_S) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_job_status(sid)
        if status.is_terminal():
            return status
        assert time.monotonic() < deadline, f"job {sid} is still {status}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def client(head):
    with JobSubmissionClient(head["url"]) as c:
        yield c


def test_a_job_with_working_dir_and_env_vars_succeeds_and_logs_its_output(client, tmp_path):
    (tmp_path / "helper.py").write_text("ANSWER = 42\n")
    (tmp_path / "big.bin").write_bytes(b"x" * 1000)
    (tmp_path / "script.py").write_text(
        "import os, helper, tray\n"
        "print('var', os.environ['GREETING'], 'answer', helper.ANSWER, 'big', os.path.exists('big.bin'))\n"
        "tray.init()\n"
        "@tray.remote\n"
        "def sq(x):\n    return x * x\n"
        "print('squares', tray.get([sq.remote(i) for i in range(4)]))\n"
        "@tray.remote\n"
        "def look():\n    import helper\n    return os.environ['GREETING'], helper.ANSWER\n"
        "print('task sees', *tray.get(look.remote()))\n")  # the job's runtime_env is its tasks' too
    sid = client.submit_job(entrypoint="python script.py", metadata={"owner": "test"},
                            runtime_env={"working_dir": str(tmp_path), "env_vars": {"GREETING": "hello"},
                                         "excludes": ["*.bin"]})
    assert wait_done(client, sid) == JobStatus.SUCCEEDED, client.get_job_logs(sid)
    logs = client.get_job_logs(sid)
    assert "var hello answer 42 big False" in logs and "squares [0, 1, 4, 9]" in logs
    assert "task sees hello 42" in logs
    info = client.get_job_info(sid)
    assert info.metadata == {"owner": "test"} and info.driver_exit_code == 0 and info.end_time >= info.start_time
    assert sid in [j.submission_id for j in client.list_jobs()]

    async def tail() -> str:
        return "".join([chunk async for chunk in client.tail_job_logs(sid)])

    assert "squares" in asyncio.run(tail())  # an ended job's tail is its whole log, then the end
    assert client.delete_job(sid) is True
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info(sid)


def test_stopping_a_long_job_ends_its_process_group(client, tmp_path):
    marker = tmp_path / "child.pid"
    sid = client.submit_job(entrypoint=f"sleep 300 & echo $! > {marker}; echo started; wait",
                            submission_id="long_job")
    deadline = time.monotonic() + WAIT_S
    while "started" not in client.get_job_logs(sid):
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.2)
    assert client.get_job_status(sid) == JobStatus.RUNNING
    with pytest.raises(RuntimeError, match="stop it before"):
        client.delete_job(sid)
    assert client.stop_job(sid) is True
    assert wait_done(client, sid, 30) == JobStatus.STOPPED
    child = int(marker.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the job's background child outlived the stop"
        time.sleep(0.1)
    assert client.stop_job(sid) is False  # already ended
    with pytest.raises(RuntimeError, match="already exists"):
        client.submit_job(entrypoint="true", submission_id="long_job")


def test_a_failing_job_fails_with_its_exit_code_and_bad_input_is_refused(client, head):
    sid = client.submit_job(entrypoint="echo about to fail; exit 3")
    assert wait_done(client, sid) == JobStatus.FAILED
    info = client.get_job_info(sid)
    assert info.driver_exit_code == 3 and "about to fail" in info.message
    with pytest.raises(ValueError, match="conda"):
        client.submit_job(entrypoint="true", runtime_env={"conda": "x"})  # checked before anything is sent
    r = head["http"].post("/api/jobs/", json={"entrypoint": "true", "runtime_env": {"conda": "x"}})
    assert r.status_code == 400 and "conda" in r.json()["msg"]
    with pytest.raises(RuntimeError, match="400"):
        client.submit_job(entrypoint="")


def test_the_cli_submits_follows_and_lists(head, tmp_path):
    (tmp_path / "hi.py").write_text("print('hi from the cli job')\n")
    env_args = ["--address", head["url"]]
    out = subprocess.run([sys.executable, "-m", "tray", "job", "submit", *env_args, "--working-dir", str(tmp_path),
                          "--submission-id", "cli_job", "--", "python", "hi.py"],
                         capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    assert "hi from the cli job" in out.stdout and "SUCCEEDED" in out.stdout
    out = subprocess.run([sys.executable, "-m", "tray", "job", "list", *env_args], capture_output=True, text=True,
                         timeout=60)
    assert "cli_job" in out.stdout and "SUCCEEDED" in out.stdout
    out = subprocess.run([sys.executable, "-m", "tray", "job", "status", *env_args, "cli_job"], capture_output=True,
                         text=True, timeout=60)
    assert "SUCCEEDED" in out.stdout
    out = subprocess.run([sys.executable, "-m", "tray", "job", "status", "--address", head["url"], "cli_job"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "TRAY_CLUSTER_TOKEN": "wrong"})
    assert out.returncode == 1 and "401" in out.stderr  # a wrong token: refused, said in words


def build_wheel(where: Path) -> Path:
    """A tiny local package, built offline into a wheel."""
    src = where / "src"
    (src / "traytestpkg").mkdir(parents=True)
    (src / "traytestpkg" / "__init__.py").write_text("VALUE = 'from the wheel'\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                        '"setuptools.build_meta"\n[project]\nname = "traytestpkg"\nversion = "0.1"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(where),
                    str(src)], check=True, capture_output=True, timeout=120)
    return next(where.glob("traytestpkg-*.whl"))


def test_pip_runtime_env_builds_a_cached_venv_once(tmp_path):
    wheel = build_wheel(tmp_path)
    root = tmp_path / "resources"
    first = _runtime_env.prepare({"pip": [str(wheel)]}, str(root), lambda name: None)
    assert first.python and Path(first.python).exists()
    out = subprocess.run([first.python, "-c", "import traytestpkg, tray; print(traytestpkg.VALUE)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "from the wheel", out.stderr
    marker = Path(first.python).parent.parent / ".ready"
    stamp = marker.stat().st_mtime_ns
    second = _runtime_env.prepare({"pip": [str(wheel)]}, str(root), lambda name: None)
    assert second.python == first.python and marker.stat().st_mtime_ns == stamp  # reused, not rebuilt
    from tray.exceptions import RuntimeEnvSetupError

    with pytest.raises(RuntimeEnvSetupError, match="failed"):
        _runtime_env.prepare({"pip": [str(tmp_path / "missing.whl")]}, str(root), lambda name: None)


def test_runtime_env_packing_is_content_addressed(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"junk")
    one = _runtime_env.pack(str(tmp_path))
    (tmp_path / "__pycache__" / "b.pyc").write_bytes(b"more junk")
    assert _runtime_env.pack(str(tmp_path)) == one  # excluded files change nothing
    (tmp_path / "a.py").write_text("x = 2\n")
    assert _runtime_env.package_uri(_runtime_env.pack(str(tmp_path))) != _runtime_env.package_uri(one)
    with pytest.raises(ValueError, match="unsupported"):
        _runtime_env.validate({"container": {}})
    with pytest.raises(ValueError, match="env_vars"):
        _runtime_env.validate({"env_vars": {"A": 1}})
