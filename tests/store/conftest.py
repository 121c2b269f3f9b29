import uuid

import pytest


@pytest.fixture
def prefix():
    """A store prefix of this test's own: its /dev/shm files are ``/dev/shm/{prefix}{key}``."""
    return f"tray-test-{uuid.uuid4().hex[:8]}-"
