import psutil
import pytest

import tray


def tray_children():
    return [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"]


@pytest.fixture(scope="module")
def ray():
    """A local node with 2 CPUs for the module's tests (started once: workers are processes).

    Its teardown checks that shutdown took every worker process with it.
    """
    tray.init(num_cpus=2, resources={"custom": 1})
    yield tray
    tray.shutdown()
    left = tray_children()
    assert not left, f"tray.shutdown() left processes behind: {left}"
