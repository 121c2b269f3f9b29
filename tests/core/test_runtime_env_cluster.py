"""runtime_env on a multi-node cluster: a node other than the driver's fetches the
working_dir package from the head's KV, unpacks it, and runs the task in it; the job's end
retires the env's worker."""

from __future__ import annotations

import os
import time

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
