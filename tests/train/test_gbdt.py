"""XGBoostTrainer and LightGBMTrainer: 2 workers train one model on their shards over the library's
own distributed mode; the checkpoint reloads in the test process."""

from __future__ import annotations

import numpy as np
import pytest

import tray
from tray.train import Checkpoint, RunConfig, ScalingConfig

HALF_CPU = {"CPU": 0.5}  # a dataset's split tasks need CPUs the workers leave free


@pytest.fixture(scope="module")
def cluster():
    tray.init(num_cpus=2)
    yield
    tray.shutdown()


def _data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """A classification set a boosted model learns well: the label is a noisy rule on 2 of 6 features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = ((x[:, 0] * x[:, 1] > 0) ^ (rng.random(n) < 0.05)).astype(np.int64)
    return x, y


# ---------------------------------------------------------------- XGBoost


def xgb_loop(config: dict) -> None:
    import xgboost

    from tray import train
    from tray.train.xgboost import RayTrainReportCallback

    rank = train.get_context().get_world_rank()
    x, y = _data(seed=rank)  # each worker holds its own shard
    dtrain = xgboost.DMatrix(x, label=y)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 4,
              "nthread": 1}
    xgboost.train(params, dtrain, num_boost_round=config["rounds"], evals=[(dtrain, "train")],
                  callbacks=[RayTrainReportCallback(frequency=5)])
    from xgboost import collective

    train.report({"world": collective.get_world_size(), "rank": collective.get_rank()})


def test_xgboost_two_workers_train_one_model(cluster, tmp_path) -> None:
    pytest.importorskip("xgboost")
    from tray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    trainer = XGBoostTrainer(xgb_loop, train_loop_config={"rounds": 12},
                             scaling_config=ScalingConfig(num_workers=2),
                             run_config=RunConfig(name="xgb", storage_path=str(tmp_path)))
    result = trainer.fit()
    assert result.error is None
    assert result.metrics == {"world": 2, "rank": 0}
    df = result.metrics_dataframe
    rounds = df.dropna(subset=["train-error"])
    assert len(rounds) == 12 + 1  # one report per round, then the end checkpoint
    assert rounds["train-error"].iloc[-1] < 0.1
    booster = RayTrainReportCallback.get_model(result.checkpoint)
    assert booster.num_boosted_rounds() == 12
    import xgboost

    x, y = _data(seed=7)  # unseen rows
    accuracy = float(((booster.predict(xgboost.DMatrix(x)) > 0.5) == y).mean())
    assert accuracy > 0.85
    assert XGBoostTrainer.get_model(Checkpoint.from_directory(result.checkpoint.path)).num_boosted_rounds() == 12


def test_xgboost_legacy_form_with_datasets(cluster, tmp_path) -> None:
    pytest.importorskip("xgboost")
    pd = pytest.importorskip("pandas")
    from tray import data
    from tray.train.xgboost import XGBoostTrainer

    def frame(seed: int) -> object:
        x, y = _data(seed)
        df = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
        df["label"] = y
        return df

    trainer = XGBoostTrainer(params={"objective": "binary:logistic", "eval_metric": "error", "nthread": 1},
                             label_column="label", num_boost_round=8,
                             datasets={"train": data.from_pandas(frame(1)), "valid": data.from_pandas(frame(2))},
                             scaling_config=ScalingConfig(num_workers=2, resources_per_worker=HALF_CPU),
                             run_config=RunConfig(name="xgb-legacy", storage_path=str(tmp_path)))
    result = trainer.fit()
    assert result.metrics["valid-error"] < 0.15
    assert XGBoostTrainer.get_model(result.checkpoint).num_boosted_rounds() == 8


def test_xgboost_without_workers_runs_in_process(tmp_path) -> None:
    xgboost = pytest.importorskip("xgboost")
    from tray.train.xgboost import XGBoostTrainer

    trainer = XGBoostTrainer(xgb_loop, train_loop_config={"rounds": 3}, scaling_config=ScalingConfig(num_workers=0),
                             run_config=RunConfig(name="xgb-local", storage_path=str(tmp_path)))
    result = trainer.fit()
    assert result.metrics == {"world": 1, "rank": 0}
    assert isinstance(XGBoostTrainer.get_model(result.checkpoint), xgboost.Booster)


def test_gbdt_trainers_refuse_mixed_or_missing_forms() -> None:
    pytest.importorskip("xgboost")
    from tray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    with pytest.raises(ValueError, match="not both"):
        XGBoostTrainer(xgb_loop, params={}, label_column="y", datasets={"train": []})
    with pytest.raises(ValueError, match="needs train_loop_per_worker"):
        XGBoostTrainer()
    with pytest.raises(ValueError, match="datasets="):
        XGBoostTrainer(params={}, label_column="y")
    with pytest.raises(TypeError, match="label_column"):
        XGBoostTrainer(params={}, label_column=3, datasets={"train": []})
    with pytest.raises(ValueError, match="frequency"):
        RayTrainReportCallback(frequency=-1)


# ---------------------------------------------------------------- LightGBM


def lgb_loop(config: dict) -> None:
    import lightgbm

    from tray import train
    from tray.train.lightgbm import RayTrainReportCallback, get_network_params

    rank = train.get_context().get_world_rank()
    x, y = _data(seed=rank)
    params = {"objective": "binary", "metric": ["binary_logloss", "binary_error"], "num_leaves": 15,
              "tree_learner": "data_parallel", "pre_partition": True, "num_threads": 1, "verbose": -1,
              **get_network_params()}
    assert params["num_machines"] == 2
    dtrain = lightgbm.Dataset(x, label=y)
    lightgbm.train(params, dtrain, num_boost_round=config["rounds"], valid_sets=[dtrain], valid_names=["train"],
                   callbacks=[RayTrainReportCallback(metrics={"error": "train-binary_error"})])


def test_lightgbm_two_workers_train_one_model(cluster, tmp_path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from tray.train.lightgbm import LightGBMTrainer, RayTrainReportCallback

    trainer = LightGBMTrainer(lgb_loop, train_loop_config={"rounds": 20},
                              scaling_config=ScalingConfig(num_workers=2),
                              run_config=RunConfig(name="lgb", storage_path=str(tmp_path)))
    result = trainer.fit()
    assert set(result.metrics) == {"error"} and result.metrics["error"] < 0.1
    assert len(result.metrics_dataframe) == 20
    booster = RayTrainReportCallback.get_model(result.checkpoint)
    assert isinstance(booster, lightgbm.Booster) and booster.current_iteration() == 20
    x, y = _data(seed=7)
    accuracy = float(((booster.predict(x) > 0.5) == y).mean())
    assert accuracy > 0.85
    assert tray.lowlevel.kv_keys("", namespace="_tray_train_lightgbm") == []  # the addresses are cleared


def test_lightgbm_legacy_form(cluster, tmp_path) -> None:
    pytest.importorskip("lightgbm")
    pd = pytest.importorskip("pandas")
    from tray import data
    from tray.train.lightgbm import LightGBMTrainer

    x, y = _data(3)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    df["label"] = y
    trainer = LightGBMTrainer(params={"objective": "binary", "metric": "binary_error", "verbose": -1,
                                      "num_threads": 1},
                              label_column="label", num_boost_round=10, datasets={"train": data.from_pandas(df)},
                              scaling_config=ScalingConfig(num_workers=2, resources_per_worker=HALF_CPU),
                              run_config=RunConfig(name="lgb-legacy", storage_path=str(tmp_path)))
    result = trainer.fit()
    assert result.metrics["train-binary_error"] < 0.15
    assert LightGBMTrainer.get_model(result.checkpoint).current_iteration() == 10


def resuming_xgb_loop(config: dict) -> None:
    """Resumes from train.get_checkpoint(); rank 1 dies once, as round 7 starts, once the run
    has recorded round 6 (checkpointed): dying right after its report could lose the report."""
    import os
    import time

    import xgboost
    from xgboost.callback import TrainingCallback

    from tray import train
    from tray.train.xgboost import RayTrainReportCallback

    def recorded() -> int:
        try:
            with open(config["results"]) as f:
                return sum(1 for line in f if line.strip())
        except FileNotFoundError:
            return 0

    class DieOnce(TrainingCallback):
        def before_iteration(self, model, epoch, evals_log) -> bool:
            if epoch == 6 and rank == 1 and not os.path.exists(config["marker"]):
                deadline = time.monotonic() + 60
                while recorded() < 6 and time.monotonic() < deadline:
                    time.sleep(0.02)
                open(config["marker"], "w").close()
                os._exit(1)
            return False

    rank = train.get_context().get_world_rank()
    x, y = _data(seed=rank)
    dtrain = xgboost.DMatrix(x, label=y)
    checkpoint = train.get_checkpoint()
    start = RayTrainReportCallback.get_model(checkpoint) if checkpoint else None
    done = start.num_boosted_rounds() if start is not None else 0
    xgboost.train({"objective": "binary:logistic", "eval_metric": "error", "nthread": 1}, dtrain,
                  num_boost_round=10 - done, evals=[(dtrain, "train")], xgb_model=start,
                  callbacks=[RayTrainReportCallback(frequency=2), DieOnce()])


def test_xgboost_worker_death_restarts_the_group_from_the_checkpoint(cluster, tmp_path) -> None:
    pytest.importorskip("xgboost")
    from tray.train import FailureConfig, TrainingFailedError
    from tray.train.xgboost import XGBoostTrainer

    def trainer(name: str, max_failures: int) -> XGBoostTrainer:
        return XGBoostTrainer(resuming_xgb_loop, train_loop_config={"marker": str(tmp_path / f"{name}.died"),
                                                                    "results": str(tmp_path / name / "result.json")},
                              scaling_config=ScalingConfig(num_workers=2),
                              run_config=RunConfig(name=name, storage_path=str(tmp_path),
                                                   failure_config=FailureConfig(max_failures=max_failures)))

    result = trainer("restarted", 1).fit()
    assert XGBoostTrainer.get_model(result.checkpoint).num_boosted_rounds() == 10
    rounds = result.metrics_dataframe["train-error"]
    assert len(rounds) == 6 + 4  # rounds 1-6 (checkpoint at 6), then 7-10 after the restart
    with pytest.raises(TrainingFailedError):
        trainer("failed", 0).fit()


def test_xgboost_legacy_params_tuned_by_tune(cluster, tmp_path) -> None:
    pytest.importorskip("xgboost")
    pd = pytest.importorskip("pandas")
    from tray import data, tune
    from tray.train.xgboost import XGBoostTrainer

    x, y = _data(4)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    df["label"] = y
    trainer = XGBoostTrainer(params={"objective": "binary:logistic", "eval_metric": "error", "nthread": 1},
                             label_column="label", num_boost_round=4, datasets={"train": data.from_pandas(df)},
                             scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.25},
                                                          trainer_resources={"CPU": 0.5}))
    grid = tune.Tuner(trainer, param_space={"params": {"max_depth": tune.grid_search([1, 4])}},
                      tune_config=tune.TuneConfig(metric="train-error", mode="min", max_concurrent_trials=1),
                      run_config=RunConfig(name="xgb-tune", storage_path=str(tmp_path))).fit()
    errors = {r.config["params"]["max_depth"]: r.metrics["train-error"] for r in grid}
    assert errors[4] < errors[1]  # depth 1 cannot learn an interaction: the tuned params reached the workers


def dying_lgb_loop() -> None:
    import os

    import lightgbm

    from tray import train
    from tray.train.lightgbm import get_network_params

    rank = train.get_context().get_world_rank()

    def die(env) -> None:
        if env.iteration == 3 and rank == 1:
            os._exit(1)

    x, y = _data(seed=rank)
    params = {"objective": "binary", "tree_learner": "data_parallel", "num_threads": 1, "verbose": -1,
              **get_network_params()}
    lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=10, callbacks=[die])


def test_lightgbm_dead_peer_fails_the_run(cluster, tmp_path) -> None:
    pytest.importorskip("lightgbm")
    from tray.train import FailureConfig, TrainingFailedError
    from tray.train.lightgbm import LightGBMTrainer

    trainer = LightGBMTrainer(dying_lgb_loop, scaling_config=ScalingConfig(num_workers=2),
                              run_config=RunConfig(name="lgb-dies", storage_path=str(tmp_path),
                                                   failure_config=FailureConfig(max_failures=0)))
    with pytest.raises(TrainingFailedError, match="rank 1"):
        trainer.fit()  # the surviving rank, blocked on its socket, is stopped with the group: no hang
