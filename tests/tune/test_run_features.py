"""Stopping rules, HyperBand's pauses, resource requests larger than the cluster, the reporter."""

from __future__ import annotations

import io
import logging
import os
import time

import pytest

from tray import tune
from tray.tune.progress_reporter import CLIReporter
from tray.tune.schedulers import HyperBandScheduler, MedianStoppingRule
from tray.tune.stopper import (
    CombinedStopper,
    ExperimentPlateauStopper,
    MaximumIterationStopper,
    TimeoutStopper,
    TrialPlateauStopper,
)


class Linear(tune.Trainable):
    def setup(self, config):
        self.slope, self.v = config["slope"], 0.0

    def step(self):
        self.v += self.slope
        return {"v": self.v}

    def save_checkpoint(self, checkpoint_dir):
        return {"v": self.v}

    def load_checkpoint(self, state):
        self.v = state["v"]


def test_hyperband_pauses_and_halves(ray, storage) -> None:
    hb = HyperBandScheduler(max_t=9, reduction_factor=3)
    results = tune.Tuner(Linear, param_space={"slope": tune.grid_search(list(range(1, 10)))},
                         tune_config=tune.TuneConfig(metric="v", mode="max", scheduler=hb),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    iters = {r.config["slope"]: r.metrics["training_iteration"] for r in results}
    assert iters[9] == 9  # the best went all the way, resumed from its checkpoints after each pause
    assert sorted(iters.values()) == [1] * 6 + [3] * 2 + [9]
    assert results.get_best_result().metrics["v"] == 81


def test_stoppers_and_time_budget(ray, storage) -> None:
    def endless(config):
        i = 0
        while True:
            i += 1
            tune.report({"i": i, "flat": 1.0})
            time.sleep(0.005)

    r = tune.Tuner(endless, run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                      stop=MaximumIterationStopper(7))).fit()
    assert r[0].metrics["i"] == 7
    r = tune.Tuner(endless, run_config=tune.RunConfig(storage_path=storage, verbose=0, stop=CombinedStopper(
        TrialPlateauStopper("flat", num_results=3, grace_period=3), TimeoutStopper(60)))).fit()
    assert r[0].metrics["i"] == 3
    r = tune.Tuner(endless, run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                      stop=lambda trial_id, result: result["i"] >= 5)).fit()
    assert r[0].metrics["i"] == 5
    start = time.monotonic()
    r = tune.Tuner(endless, tune_config=tune.TuneConfig(time_budget_s=1.0, num_samples=3),
                   run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert time.monotonic() - start < 30 and r.num_terminated >= 1 and not r.errors
    stopper = ExperimentPlateauStopper("m", top=2, mode="max")
    assert not stopper("a", {"m": 1.0}) and stopper("b", {"m": 1.0}) and stopper.stop_all()
    with pytest.raises(ValueError, match="stop must be"):
        tune.Tuner(endless, run_config=tune.RunConfig(storage_path=storage, verbose=0, stop=42)).fit()


def test_median_stopping_cuts_the_worst(ray, storage) -> None:
    def steady(config):
        for _ in range(6):
            tune.report({"acc": config["acc"]})

    rule = MedianStoppingRule(time_attr="training_iteration", grace_period=2, min_samples_required=2)
    results = tune.Tuner(steady, param_space={"acc": tune.grid_search([0.9, 0.95, 0.1, 0.8])},
                         tune_config=tune.TuneConfig(metric="acc", mode="max", scheduler=rule,
                                                     max_concurrent_trials=1),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    iters = {r.config["acc"]: r.metrics["training_iteration"] for r in results}
    assert iters[0.9] == 6 and iters[0.95] == 6  # the first ones had too few others to compare with
    assert iters[0.1] == 2 and iters[0.8] == 2  # below the median of the others' running means at t=2


class Greedy(tune.Trainable):
    """Asks for more CPUs than a laptop has, by default (as RLlib's algorithms may)."""

    @classmethod
    def default_resource_request(cls, config):
        return tune.PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1}] * config["workers"])

    def step(self):
        return {"ok": 1, "done": True}


def test_default_request_larger_than_the_cluster_is_scaled_down(ray, storage, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tray.tune"):
        analysis = tune.run(Greedy, config={"workers": 4}, storage_path=storage, verbose=0)
    assert analysis.trials[0].status == "TERMINATED"
    assert "more than this cluster has" in caplog.text
    # an explicit request is the user's: it fails at once, naming what is missing
    with pytest.raises(tune.TuneError):
        tune.run(Greedy, config={"workers": 4}, resources_per_trial={"cpu": 3}, storage_path=storage, verbose=0)


def test_restart_errored_trials_on_restore(ray, storage) -> None:
    flag = {"fail": True}

    def sometimes(config):
        tune.report({"x": config["x"]})
        if config["x"] == 1 and config.get("fail", True) and flag["fail"]:
            raise RuntimeError("first time")

    results = tune.Tuner(sometimes, param_space={"x": tune.grid_search([0, 1])},
                         run_config=tune.RunConfig(name="e", storage_path=storage, verbose=0)).fit()
    assert results.num_errors == 1
    flag["fail"] = False
    again = tune.Tuner.restore(f"{storage}/e", trainable=sometimes, restart_errored=True).fit()
    assert again.num_errors == 0 and again.num_terminated == 2


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_table_redraws_in_place_on_a_terminal(ray, storage) -> None:
    def f(config):
        tune.report({"acc": config["lr"] * 2})

    out = FakeTTY()
    reporter = CLIReporter(max_report_frequency=0, out=out)
    tune.Tuner(f, param_space={"lr": tune.grid_search([0.1, 0.2])},
               run_config=tune.RunConfig(storage_path=storage, verbose=1, progress_reporter=reporter)).fit()
    text = out.getvalue()
    assert "\x1b[" in text and "F\x1b[J" in text  # cursor up, clear: the table is redrawn
    assert "2 TERMINATED" in text and "acc" in text and "lr" in text
    plain = io.StringIO()
    tune.Tuner(f, param_space={"lr": 0.5},
               run_config=tune.RunConfig(storage_path=storage, verbose=1,
                                         progress_reporter=CLIReporter(max_report_frequency=0, out=plain))).fit()
    assert "\x1b[" not in plain.getvalue() and "TERMINATED" in plain.getvalue()


def test_tensorboard_event_files_are_valid_tfrecords(tmp_path) -> None:
    import struct

    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto import event_pb2

    from tray.tune._tfevents import masked_crc as _masked_crc
    from tray.tune.callback import TBXLoggerCallback

    class FakeTrial:
        trial_id, local_path = "t", str(tmp_path)

    cb = TBXLoggerCallback()
    for i in (1, 2):
        cb.log_trial_result(i, FakeTrial, {"acc": i / 10, "training_iteration": i, "done": False})
    cb.log_trial_end(FakeTrial)
    (name,) = [n for n in os.listdir(tmp_path) if n.startswith("events.out.tfevents.")]
    data, pos, events = (tmp_path / name).read_bytes(), 0, []
    while pos < len(data):
        header = data[pos:pos + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == _masked_crc(header)
        body = data[pos + 12:pos + 12 + n]
        assert struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])[0] == _masked_crc(body)
        event = event_pb2.Event()
        event.ParseFromString(body)
        events.append(event)
        pos += 16 + n
    assert events[0].file_version == "brain.Event:2"
    from tray.tune._tfevents import crc32c as ours

    assert all(ours(b) == crc32c(b) for b in (b"", b"a", b"123456789", data))  # the same CRC-32C as tensorboardX
    assert [(e.step, {v.tag: round(v.simple_value, 3) for v in e.summary.value}) for e in events[1:]] == [
        (1, {"ray/tune/acc": 0.1, "ray/tune/training_iteration": 1.0}),
        (2, {"ray/tune/acc": 0.2, "ray/tune/training_iteration": 2.0})]


def test_a_searcher_that_does_not_pickle_still_runs_and_restores(ray, storage, caplog) -> None:
    import threading

    class Locked(tune.search.Searcher):
        def __init__(self):
            super().__init__()
            self.lock, self.n = threading.Lock(), 0

        def suggest(self, trial_id):
            self.n += 1
            return {"x": self.n} if self.n <= 3 else tune.search.Searcher.FINISHED

    def f(config):
        tune.report({"x": config["x"]})

    with caplog.at_level(logging.WARNING, logger="tray.tune"):
        results = tune.Tuner(f, tune_config=tune.TuneConfig(search_alg=Locked(), num_samples=10),
                             run_config=tune.RunConfig(name="locked", storage_path=storage, verbose=0)).fit()
    assert results.num_terminated == 3 and "cannot be pickled" in caplog.text
    again = tune.Tuner.restore(f"{storage}/locked", trainable=f).fit()
    assert again.num_terminated == 3


def test_trial_name_creators_and_unsupported_options(ray, storage) -> None:
    def f(config):
        tune.report({"name": tune.get_context().get_trial_name()})

    results = tune.Tuner(f, param_space={"k": tune.grid_search([1, 2])},
                         tune_config=tune.TuneConfig(trial_name_creator=lambda t: f"job-{t.config['k']}",
                                                     trial_dirname_creator=lambda t: f"dir-{t.config['k']}"),
                         run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert sorted(r.metrics["name"] for r in results) == ["job-1", "job-2"]
    assert sorted(os.path.basename(r.path) for r in results) == ["dir-1", "dir-2"]
    with pytest.raises(ValueError, match="URIs are not supported"):
        tune.Tuner(f, run_config=tune.RunConfig(storage_path="s3://bucket/x")).fit()
    with pytest.raises(ValueError, match="log_to_file"):
        tune.Tuner(f, run_config=tune.RunConfig(storage_path=storage, log_to_file=True)).fit()
    with pytest.raises(ValueError, match="for class trainables"):
        tune.run(f, checkpoint_at_end=True, storage_path=storage, verbose=0)
    with pytest.raises(ValueError, match="chdir_to_trial_dir"):
        tune.Tuner(f, tune_config=tune.TuneConfig(chdir_to_trial_dir=True),
                   run_config=tune.RunConfig(storage_path=storage)).fit()


def test_a_trainable_made_by_hand_logs_under_the_results_dir_not_the_temp_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TRAY_RESULTS_DIR", str(tmp_path / "results"))
    trainable = Linear({"slope": 1.0})
    try:
        assert os.path.dirname(trainable.logdir) == str(tmp_path / "results")
        assert os.path.basename(trainable.logdir).startswith(f"Linear_{time.strftime('%Y-')}")
        saved = trainable.save()
        assert saved.checkpoint.path.startswith(trainable.logdir)
    finally:
        trainable.stop()


def test_a_logger_creator_gives_the_logdir_gets_each_result_and_is_closed(tmp_path) -> None:
    class Logger:
        def __init__(self, config: dict) -> None:
            self.logdir, self.config, self.results, self.closed = str(tmp_path / "mine"), config, [], False

        def on_result(self, result: dict) -> None:
            self.results.append(result["training_iteration"])

        def close(self) -> None:
            self.closed = True

    made: list[Logger] = []
    trainable = Linear({"slope": 2.0}, logger_creator=lambda config: made.append(Logger(config)) or made[-1])
    trainable.train()
    trainable.train()
    trainable.stop()
    (logger,) = made
    assert trainable.logdir == logger.logdir and os.path.isdir(logger.logdir)
    assert logger.config == {"slope": 2.0} and logger.results == [1, 2] and logger.closed
    with pytest.raises(TypeError, match="logger_creator must return a logger with a str .logdir"):
        Linear({}, logger_creator=lambda config: object())
