"""Real runs: trials as runner actors in worker processes, results on disk, failures."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from tray import tune
from tray.tune import Checkpoint
from tray.tune.schedulers import ASHAScheduler, PopulationBasedTraining, PopulationBasedTrainingReplay


def fn_with_checkpoints(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            start = json.load(open(os.path.join(d, "state.json")))["step"] + 1
    for step in range(start, config["steps"]):
        with tempfile.TemporaryDirectory() as d:
            json.dump({"step": step}, open(os.path.join(d, "state.json"), "w"))
            tune.report({"score": config["x"] * step, "step": step}, checkpoint=Checkpoint.from_directory(d))


def test_tuner_fit_results_and_layout(ray, storage) -> None:
    tuner = tune.Tuner(fn_with_checkpoints,
                       param_space={"x": tune.grid_search([1, 2, 3]), "steps": 4},
                       tune_config=tune.TuneConfig(metric="score", mode="max"),
                       run_config=tune.RunConfig(name="exp", storage_path=storage, verbose=0,
                                                 checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
    results = tuner.fit()
    assert len(results) == 3 and results.num_terminated == 3 and results.num_errors == 0 and not results.errors
    best = results.get_best_result()
    assert best.config["x"] == 3 and best.metrics["score"] == 9 and best.metrics["training_iteration"] == 4
    assert best.metrics["done"] is True
    assert best.checkpoint is not None and json.load(open(os.path.join(best.checkpoint.path, "state.json"))) == {
        "step": 3}
    assert len(best.best_checkpoints) == 2  # num_to_keep: the rest were deleted
    assert sorted(n for n in os.listdir(best.path) if n.startswith("checkpoint_")) == ["checkpoint_000002",
                                                                                     "checkpoint_000003"]
    assert {"params.json", "params.pkl", "result.json", "progress.csv"} <= set(os.listdir(best.path))
    assert json.load(open(os.path.join(best.path, "params.json"))) == {"x": 3, "steps": 4}
    assert len(open(os.path.join(best.path, "result.json")).readlines()) == 4
    assert list(best.metrics_dataframe["score"]) == [0, 3, 6, 9]
    df = results.get_dataframe()
    assert len(df) == 3 and "config/x" in df.columns
    assert results.get_best_result(metric="score", mode="min").config["x"] == 1
    with pytest.raises(RuntimeError, match="no trial reported the metric 'nope'.*score"):
        results.get_best_result(metric="nope", mode="max")
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        results.get_best_result(metric="score", mode="best")
    assert tune.Tuner.can_restore(os.path.join(storage, "exp"))


def test_user_error_ends_only_that_trial(ray, storage) -> None:
    def flaky(config):
        tune.report({"v": 1})
        if config["x"] == 2:
            raise ValueError("bad x")
        tune.report({"v": 2})

    results = tune.Tuner(flaky, param_space={"x": tune.grid_search([1, 2, 3])},
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert results.num_errors == 1 and results.num_terminated == 2
    assert isinstance(results.errors[0], ValueError) and "bad x" in str(results.errors[0])
    failed = [r for r in results if r.error is not None][0]
    assert "bad x" in open(os.path.join(failed.path, "error.txt")).read()
    assert failed.metrics["v"] == 1  # what it reported before failing is kept
    with pytest.raises(tune.TuneError, match="did not complete"):
        tune.run(flaky, config={"x": 2}, storage_path=storage, verbose=0)


def test_crashed_trial_process_restarts_from_its_checkpoint(ray, storage) -> None:
    marker = os.path.join(storage, "crashed-once")

    def crashy(config):
        ckpt = tune.get_checkpoint()
        start = 0
        if ckpt is not None:
            start = json.load(open(os.path.join(ckpt.path, "s.json")))["i"] + 1
        for i in range(start, 5):
            with tempfile.TemporaryDirectory() as d:
                json.dump({"i": i}, open(os.path.join(d, "s.json"), "w"))
                tune.report({"i": i, "resumed_from": start}, checkpoint=Checkpoint.from_directory(d))
            if i == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # the whole process dies, as a segfault or OOM kill would

    results = tune.Tuner(crashy, run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                           failure_config=tune.FailureConfig(max_failures=1))).fit()
    r = results[0]
    assert r.error is None and r.metrics["i"] == 4 and r.metrics["resumed_from"] == 3
    assert r.metrics["training_iteration"] == 5  # counting goes on from the checkpointed result
    # without restarts allowed the same crash is the trial's error
    os.unlink(marker)
    results = tune.Tuner(crashy, run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert results.num_errors == 1 and "died" in str(results.errors[0])


class Counter(tune.Trainable):
    def setup(self, config):
        self.n = 0
        self.inc = config["inc"]

    def step(self):
        self.n += self.inc
        return {"n": self.n}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.n}

    def load_checkpoint(self, state):
        self.n = state["n"]


def test_class_trainable_with_stop_and_checkpoints(ray, storage) -> None:
    analysis = tune.run(Counter, config={"inc": tune.grid_search([1, 3])}, stop={"training_iteration": 4},
                        checkpoint_freq=2, checkpoint_at_end=True, storage_path=storage, verbose=0,
                        metric="n", mode="max")
    assert analysis.best_config == {"inc": 3}
    assert analysis.best_result["n"] == 12 and analysis.best_result["training_iteration"] == 4
    trial = analysis.best_trial
    assert trial.checkpoint is not None
    restored = Counter({"inc": 3})
    restored.restore(trial.checkpoint.path)
    assert restored.n == 12 and restored.iteration == 4
    assert len(analysis.dataframe()) == 2 and set(analysis.results_df["n"]) == {4, 12}


def test_trial_that_can_never_fit_fails_at_once(ray, storage) -> None:
    results = tune.Tuner(tune.with_resources(lambda c: tune.report({"x": 1}), {"cpu": 64}),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert results.num_errors == 1
    assert "missing {'CPU': 64.0}" in str(results.errors[0])
    pgf = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 1}])
    results = tune.Tuner(tune.with_resources(lambda c: tune.report({"x": 1}), pgf),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert results.num_terminated == 1  # two bundles in a placement group fit in two CPUs


def test_asha_stops_bad_trials_early(ray, storage) -> None:
    def curve(config):
        for i in range(1, 17):
            tune.report({"loss": config["q"] / i})

    results = tune.Tuner(curve, param_space={"q": tune.grid_search([1, 2, 4, 8, 16, 32, 64, 128])},
                         tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=2,
                                                     scheduler=ASHAScheduler(max_t=16, grace_period=2,
                                                                             reduction_factor=2)),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    iters = {r.config["q"]: r.metrics["training_iteration"] for r in results}
    assert iters[1] == 16 and min(iters.values()) < 16  # the best ran to the end; some were cut
    assert results.get_best_result().config["q"] == 1


def test_optuna_finds_the_quadratic_minimum(ray, storage) -> None:
    from tray.tune.search import ConcurrencyLimiter
    from tray.tune.search.optuna import OptunaSearch

    def quadratic(config):
        tune.report({"loss": (config["x"] - 3) ** 2 + (config["y"] + 1) ** 2})

    search = ConcurrencyLimiter(OptunaSearch(seed=0, points_to_evaluate=[{"x": 0.0, "y": 0.0}]), max_concurrent=2)
    results = tune.Tuner(quadratic, param_space={"x": tune.uniform(-10, 10), "y": tune.uniform(-10, 10)},
                         tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=search, num_samples=40),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    best = results.get_best_result()
    assert len(results) == 40 and results[0].config == {"x": 0.0, "y": 0.0}
    assert abs(best.config["x"] - 3) < 2 and abs(best.config["y"] + 1) < 2


def test_pbt_exploits_better_trials(ray, storage) -> None:
    import time

    def pbt_fn(config):
        value = 0.0
        ckpt = tune.get_checkpoint()
        if ckpt is not None:
            value = json.load(open(os.path.join(ckpt.path, "v.json")))["v"]
        open(os.path.join(storage, f"started-{config['rate']}"), "w").close()
        deadline = time.monotonic() + 60
        while len([n for n in os.listdir(storage) if n.startswith("started-")]) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # both trials run side by side, so each has the other's scores to compare
        for _ in range(12):
            time.sleep(0.05)  # a step takes a moment, so a trial stalled briefly finds the other not yet done
            value += config["rate"]
            with tempfile.TemporaryDirectory() as d:
                json.dump({"v": value}, open(os.path.join(d, "v.json"), "w"))
                tune.report({"value": value}, checkpoint=Checkpoint.from_directory(d))

    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"rate": [0.1, 1.0, 10.0]}, seed=1)
    results = tune.Tuner(pbt_fn, param_space={"rate": tune.grid_search([0.1, 10.0])},
                         tune_config=tune.TuneConfig(metric="value", mode="max", scheduler=pbt),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                   stop={"training_iteration": 12})).fit()
    assert results.num_terminated == 2
    low = [r for r in results if r.path and "rate=0.1" in os.path.basename(r.path)][0]
    assert low.metrics["value"] > 12 * 0.1 + 5  # it took over the better trial's value and rate
    # its history is logged, and PopulationBasedTrainingReplay plays it back on a new trial
    policy = os.path.join(results.experiment_path, f"pbt_policy_{low.metrics['trial_id']}.txt")
    lines = [json.loads(line) for line in open(policy)]
    assert lines and lines[0][4]["rate"] == 10.0 and lines[-1][5]["rate"] == low.config["rate"]
    replay = PopulationBasedTrainingReplay(policy)
    again = tune.Tuner(pbt_fn, tune_config=tune.TuneConfig(scheduler=replay),
                       run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                 stop={"training_iteration": 12})).fit()
    assert again[0].config["rate"] == low.config["rate"] and again[0].metrics["value"] > 5


def test_with_parameters_repeater_and_registry(ray, storage) -> None:
    import numpy as np

    from tray.tune.search import BasicVariantGenerator, Repeater

    data = np.arange(1000.0)

    def uses_data(config, data):
        tune.report({"total": float(data.sum()) * config["k"]})

    tune.register_trainable("uses_data", tune.with_parameters(uses_data, data=data))
    analysis = tune.run("uses_data", config={"k": tune.grid_search([1, 2])}, storage_path=storage, verbose=0)
    assert sorted(t.last_result["total"] for t in analysis.trials) == [499500.0, 999000.0]
    with pytest.raises(ValueError, match="unknown trainable 'nope'"):
        tune.run("nope")
    with pytest.raises(TypeError, match="must be a function"):
        tune.Tuner(42)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        tune.TuneConfig(mode="maximize")
    with pytest.raises(ValueError, match="search-space object"):
        tune.Tuner(lambda c: None, param_space={"x": object.__new__(type("Dist", (), {"get_sampler": 1}))},
                   run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    with pytest.raises(TypeError, match="takes no parameter named other"):
        tune.with_parameters(uses_data, other=1)

    class Avg(tune.search.Searcher):
        def __init__(self):
            super().__init__()
            self.completed = []

        def suggest(self, trial_id):
            return {"k": 1.0}

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.completed.append(result["score"])

    def noisy(config):
        tune.report({"score": config["k"] + config["__trial_index__"]})

    inner = Avg()
    tune.Tuner(noisy, tune_config=tune.TuneConfig(metric="score", mode="max", num_samples=6,
                                                  search_alg=Repeater(inner, repeat=3)),
               run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert inner.completed == [2.0, 2.0]  # the mean of 1, 2, 3 for each group of three
    assert isinstance(BasicVariantGenerator(), tune.search.SearchAlgorithm)
