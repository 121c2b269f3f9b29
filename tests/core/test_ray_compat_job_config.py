"""``tray.job_config.JobConfig`` given to ``tray.init``: its namespace and runtime_env are
honoured, what tray cannot honour is refused by name."""

import pytest

import tray


def test_job_config():
    from tray.job_config import JobConfig

    tray.init(num_cpus=1, job_config=JobConfig(ray_namespace="jc-ns"))
    try:
        assert tray.get_runtime_context().namespace == "jc-ns"
    finally:
        tray.shutdown()
    with pytest.raises(NotImplementedError, match="metadata"):
        tray.init(num_cpus=1, job_config=JobConfig(metadata={"team": "x"}))
    assert not tray.is_initialized()
    with pytest.raises(ValueError, match="env_vars"):  # its runtime_env is honoured, so checked first
        tray.init(num_cpus=1, job_config=JobConfig(runtime_env={"env_vars": {"A": 1}}))
    assert not tray.is_initialized()
    with pytest.raises(ValueError, match="default_actor_lifetime"):
        JobConfig(default_actor_lifetime="forever")
