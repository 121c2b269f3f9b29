"""Labels of a node started by ``tray.init(labels=...)`` and by ``tray start --labels``:
checked before anything starts, shown by ``tray.nodes()``, matched by ``label_selector``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tray
from tray.exceptions import TaskUnschedulableError


@pytest.mark.parametrize(("labels", "error"), [
    ({"ray.io/zone": "a"}, ValueError),  # Ray's prefix is reserved for its default labels
    ({"zone": 1}, TypeError),
    ("zone=a", TypeError),
    ({"bad key": "a"}, ValueError),
])
def test_bad_labels_fail_before_anything_starts(labels, error):
    with pytest.raises(error):
        tray.init(num_cpus=1, labels=labels)
    assert not tray.is_initialized()


def test_init_labels_are_the_nodes_and_selectors_match_them():
    tray.init(num_cpus=1, labels={"zone": "a"})
    try:
        node_id = tray.get_runtime_context().get_node_id()
        assert [n["Labels"] for n in tray.nodes()] == [{"ray.io/node-id": node_id, "zone": "a"}]

        @tray.remote
        def ok() -> int:
            return 1

        assert tray.get(ok.options(label_selector={"zone": "a"}).remote(), timeout=60) == 1
        assert tray.get(ok.options(label_selector={"ray.io/node-id": node_id}).remote(), timeout=60) == 1
        with pytest.raises(TaskUnschedulableError, match="labels match"):
            tray.get(ok.options(label_selector={"zone": "b"}).remote(), timeout=60)
    finally:
        tray.shutdown()


@pytest.mark.parametrize("labels", ['{"ray.io/zone": "a"}', "zone", "ray.io/zone=a", '["zone"]', "a=b=c"])
def test_tray_start_refuses_bad_labels_without_starting_a_node(labels, tmp_path):
    r = subprocess.run([sys.executable, "-m", "tray", "start", "--head", "--labels", labels],
                       capture_output=True, text=True, timeout=60, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin"})
    assert r.returncode == 2, r.stderr
    assert "--labels" in r.stderr + r.stdout
