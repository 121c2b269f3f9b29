import pytest

import tray


@pytest.fixture(scope="module")
def cluster():
    """One 2-CPU runtime for a module's tests that need remote env runners."""
    tray.init(num_cpus=2)
    yield
    tray.shutdown()
