"""XGBoostTrainer and LightGBMTrainer: 2 workers train one model on their shards over the library's
own distributed mode; the checkpoint reloads in the test process."""

from __future__ import annotations

import numpy as np
import pytest

import tray
from tray.train import Checkpoint, RunConfig, ScalingConfig


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
