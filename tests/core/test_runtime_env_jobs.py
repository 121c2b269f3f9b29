"""runtime_env of whole jobs (each test its own session): on a multi-node cluster a node
other than the driver's fetches the working_dir package from the head's KV, unpacks it and
runs the task in it, and the job's end retires the env's worker; a job-level pip env is
built at ``tray.init`` (eager_install), before any task asks for it; a JobConfig's
working_dir is its tasks' (not its driver's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

import tray
from tray.cluster_utils import Cluster


def test_a_far_node_runs_a_task_in_an_uploaded_working_dir(tmp_path):
    (tmp_path / "rt_far_module.py").write_text("WHERE = 'far working_dir'\n")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        far = c.add_node(num_cpus=1, resources={"far": 1})
        tray.init(address=c.address)

        @tray.remote(resources={"far": 1}, runtime_env={"working_dir": str(tmp_path),
                                                        "env_vars": {"RT_FAR": "yes"}})
        def there():
            import rt_far_module

            return (rt_far_module.WHERE, os.environ["RT_FAR"], tray.get_runtime_context().get_node_id(),
                    os.getpid())

        where, flag, node, pid = tray.get(there.remote(), timeout=120)
        assert (where, flag) == ("far working_dir", "yes")
        assert node == far.node_id
        assert _alive(pid)  # its worker, started in the env, idles on the far node
        tray.shutdown()  # the job ends: its env worker on the far node goes
        deadline = time.monotonic() + 60
        while _alive(pid):
            assert time.monotonic() < deadline, "the job's env worker outlived its job"
            time.sleep(0.2)
    finally:
        tray.shutdown()
        c.shutdown()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_jobs_pip_env_is_built_at_init_and_its_tasks_run_in_it(tmp_path):
    src = tmp_path / "src"
    (src / "rteagerpkg").mkdir(parents=True)
    (src / "rteagerpkg" / "__init__.py").write_text("VALUE = 'eager'\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                        '"setuptools.build_meta"\n[project]\nname = "rteagerpkg"\nversion = "0.1"\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                    str(src)], check=True, capture_output=True, timeout=120)
    wheel = next(tmp_path.glob("rteagerpkg-*.whl"))
    tray.init(num_cpus=1, runtime_env={"pip": [str(wheel)]})
    try:
        venvs = Path(tray.lowlevel.runtime_info().session_dir) / "runtime_resources" / "venvs"  # type: ignore[arg-type]
        deadline = time.monotonic() + 120
        while not list(venvs.glob("*/.ready")):  # no task has asked for it yet
            assert time.monotonic() < deadline, "the job's pip env was not built at init"
            time.sleep(0.2)

        @tray.remote
        def value():
            import rteagerpkg

            return rteagerpkg.VALUE, sys.prefix

        got, prefix = tray.get(value.remote(), timeout=120)
        assert got == "eager" and Path(prefix).parent == venvs
        assert tray.get_runtime_context().runtime_env["pip"] == [str(wheel)]
    finally:
        tray.shutdown()


def test_a_job_configs_working_dir_is_where_its_tasks_run(tmp_path):
    from tray.job_config import JobConfig

    (tmp_path / "rt_job_module.py").write_text("WHERE = 'job working_dir'\n")
    here = os.getcwd()
    tray.init(num_cpus=1, job_config=JobConfig(runtime_env={"working_dir": str(tmp_path)}))
    try:
        @tray.remote
        def where():
            import rt_job_module

            return rt_job_module.WHERE, os.path.exists("rt_job_module.py")

        assert tray.get(where.remote(), timeout=120) == ("job working_dir", True)
        assert os.getcwd() == here  # the driver stays where it was, as in Ray
        assert tray.get_runtime_context().runtime_env["working_dir"].startswith("kv://")
    finally:
        tray.shutdown()
