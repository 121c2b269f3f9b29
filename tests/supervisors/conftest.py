"""Deterministic runs for supervisor tests: trio under a MockClock that autojumps."""

import pytest
import trio
import trio.testing


def run_deterministic(afn, *args):
    """Run ``afn`` under a MockClock that jumps ahead whenever every task is blocked."""
    return trio.run(afn, *args, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.fixture
def run():
    return run_deterministic
