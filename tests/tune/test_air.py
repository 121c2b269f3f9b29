"""tray._air: Checkpoint (local and URI), configs, the report session, Result."""

from __future__ import annotations

import json
import os

import pytest

from tray._air import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    Result,
    RunConfig,
    ScalingConfig,
    Session,
    get_checkpoint,
    get_context,
    report,
)
from tray._air.session import TrainContext, init_session, shutdown_session


def test_local_checkpoint_round_trip_and_metadata(tmp_path) -> None:
    src = tmp_path / "ck"
    src.mkdir()
    (src / "model.txt").write_text("weights")
    ckpt = Checkpoint.from_directory(src)
    assert ckpt.path == str(src)
    assert type(ckpt.filesystem).__name__ == "LocalFileSystem"
    assert ckpt.get_metadata() == {}
    ckpt.set_metadata({"epoch": 1})
    ckpt.update_metadata({"loss": 0.5})
    assert ckpt.get_metadata() == {"epoch": 1, "loss": 0.5}
    out = ckpt.to_directory(str(tmp_path / "copy"))
    assert open(os.path.join(out, "model.txt")).read() == "weights"
    with ckpt.as_directory() as d:
        assert d == str(src)
    with pytest.raises(ValueError, match="not a directory"):
        Checkpoint.from_directory(tmp_path / "missing")
    with pytest.raises(TypeError, match="must be a dict"):
        ckpt.set_metadata([1])  # type: ignore[arg-type]


def test_uri_checkpoint_through_fsspec(tmp_path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/ckpts/one/state.bin", b"abc")
    ckpt = Checkpoint("memory:///ckpts/one")
    assert type(ckpt.filesystem).__name__ == "PyFileSystem"
    ckpt.set_metadata({"step": 3})
    assert ckpt.get_metadata() == {"step": 3}
    with ckpt.as_directory() as d:
        assert open(os.path.join(d, "state.bin"), "rb").read() == b"abc"
        tmp = d
    assert not os.path.exists(tmp)  # a remote checkpoint's local copy goes away


def test_configs_check_their_fields() -> None:
    rc = RunConfig(name="x")
    assert rc.failure_config == FailureConfig() and rc.checkpoint_config == CheckpointConfig()
    with pytest.raises(ValueError, match="checkpoint_score_order"):
        CheckpointConfig(checkpoint_score_order="best")
    with pytest.raises(ValueError, match="num_to_keep"):
        CheckpointConfig(num_to_keep=0)
    with pytest.raises(ValueError, match="max_failures"):
        FailureConfig(max_failures=-2)
    with pytest.raises(TypeError, match="failure_config"):
        RunConfig(failure_config={"max_failures": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_workers"):
        ScalingConfig(num_workers=-1)


def test_scaling_config_resources() -> None:
    sc = ScalingConfig(num_workers=3, resources_per_worker={"CPU": 2, "custom": 1})
    assert sc.total_resources == {"CPU": 6.0, "custom": 3.0}
    assert sc.num_cpus_per_worker == 2 and sc.additional_resources_per_worker == {"custom": 1.0}
    pgf = sc.as_placement_group_factory()
    assert len(pgf.bundles) == 4 and pgf.required_resources == {"CPU": 6.0, "custom": 3.0}
    gpu = ScalingConfig(num_workers=2, use_gpu=True, trainer_resources={"CPU": 1})
    assert gpu.total_resources == {"CPU": 3.0, "GPU": 2.0}


def test_session_report_and_context() -> None:
    with pytest.raises(RuntimeError, match="outside of a Tune trial"):
        report({"x": 1})
    assert get_checkpoint() is None and get_context().get_world_size() == 1
    got = []
    init_session(Session(lambda m, c: got.append((m, c)), TrainContext(trial_name="t1", world_rank=2)))
    try:
        report({"x": 1})
        with pytest.raises(TypeError, match="dict of metrics"):
            report([1])  # type: ignore[arg-type]
        assert get_context().get_trial_name() == "t1" and get_context().get_world_rank() == 2
    finally:
        shutdown_session()
    assert got == [({"x": 1}, None)]


def test_result_from_path(tmp_path) -> None:
    (tmp_path / "result.json").write_text("\n".join(json.dumps({"it": i, "acc": i / 10}) for i in range(3)) + "\n")
    (tmp_path / "params.json").write_text(json.dumps({"lr": 0.1}))
    (tmp_path / "checkpoint_000000").mkdir()
    r = Result.from_path(tmp_path)
    assert r.metrics["acc"] == 0.2 and r.config == {"lr": 0.1}
    assert r.checkpoint is not None and r.checkpoint.path.endswith("checkpoint_000000")
    assert list(r.metrics_dataframe["it"]) == [0, 1, 2]
