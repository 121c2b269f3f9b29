"""The project's seed program, run as written; and a run resumed after its driver was killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

from tray import tune
from tray.tune import Checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_seed_program_runs_as_written(tmp_path) -> None:
    code = (ROOT / "examples" / "tune_seed.py").read_text()
    assert "from tray import tune" in code and "tune.track.log(mean_accuracy=acc)" in code
    # print the dataframe too, to check what it holds
    script = tmp_path / "seed.py"
    script.write_text(code + "\nprint('ROWS', len(df), 'ACC', max(df['mean_accuracy']))\n")
    env = {**os.environ, "TRAY_RESULTS_DIR": str(tmp_path / "results"), "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "0"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Best config:  {'lr': " in out.stdout
    assert "TERMINATED" in out.stdout  # the progress table
    rows_line = [ln for ln in out.stdout.splitlines() if ln.startswith("ROWS")][0].split()
    assert rows_line[1] == "3" and float(rows_line[3]) > 0.5  # ten classes: chance is 0.1
    (exp,) = (tmp_path / "results").iterdir()
    trials = [p for p in exp.iterdir() if p.is_dir()]
    assert len(trials) == 3
    for t in trials:
        assert len((t / "result.json").read_text().splitlines()) == 10
        assert len(pd.read_csv(t / "progress.csv")) == 10
        assert any(n.startswith("events.out.tfevents") for n in os.listdir(t))  # tensorboardX is installed


DRIVER = textwrap.dedent('''
    import json, os, sys, tempfile, time
    from tray import tune
    from tray.tune import Checkpoint

    def slow(config):
        start = 0
        ckpt = tune.get_checkpoint()
        if ckpt is not None:
            start = json.load(open(os.path.join(ckpt.path, "s.json")))["i"] + 1
        for i in range(start, config["steps"]):
            time.sleep(config["sleep"])
            with tempfile.TemporaryDirectory() as d:
                json.dump({"i": i}, open(os.path.join(d, "s.json"), "w"))
                tune.report({"i": i, "start": start}, checkpoint=Checkpoint.from_directory(d))

    tune.Tuner(slow, param_space={"steps": tune.grid_search([2, 40]), "sleep": 0.1},
               tune_config=tune.TuneConfig(max_concurrent_trials=2),
               run_config=tune.RunConfig(name="exp", storage_path=sys.argv[1], verbose=0)).fit()
''')


def slow(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        start = json.load(open(os.path.join(ckpt.path, "s.json")))["i"] + 1
    for i in range(start, config["steps"]):
        with tempfile.TemporaryDirectory() as d:
            json.dump({"i": i}, open(os.path.join(d, "s.json"), "w"))
            tune.report({"i": i, "start": start}, checkpoint=Checkpoint.from_directory(d))


def test_restore_after_the_driver_is_killed(ray, tmp_path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # the killed driver cannot remove its session's socket files: keep them in a folder of this test's
    own = tempfile.mkdtemp(prefix="tk-")
    env = {**os.environ, "TMPDIR": own}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], start_new_session=True, env=env)
    exp = tmp_path / "exp"
    state = exp / "experiment_state.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait: the short trial finished, the long one has checkpoints
            time.sleep(0.1)
            if not state.exists():
                continue
            trials = json.loads(state.read_text())["trials"]
            done = [t for t in trials if t["status"] == "TERMINATED"]
            running = [t for t in trials if t["status"] == "RUNNING" and t["checkpoint"]]
            if done and running and len(os.listdir(running[0]["path"])) > 6:
                break
        else:
            raise AssertionError("the driver never got to a finished and a checkpointed trial")
    finally:
        import psutil

        workers = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its node, at once
        proc.wait()
        # its workers notice their parent's death and exit on their own: wait for that here, so a
        # loaded machine's slower exit is not taken for a leak of this test
        psutil.wait_procs(workers, timeout=30)
        shutil.rmtree(own, ignore_errors=True)
    finished = Path(done[0]["path"])
    lines_before = len((finished / "result.json").read_text().splitlines())
    assert tune.Tuner.can_restore(exp)
    results = tune.Tuner.restore(str(exp), trainable=slow).fit()
    assert results.num_terminated == 2 and not results.errors
    by_steps = {r.config["steps"]: r for r in results}
    assert len((finished / "result.json").read_text().splitlines()) == lines_before  # not run again
    long = by_steps[40]
    assert long.metrics["i"] == 39 and long.metrics["start"] > 0  # resumed from its checkpoint
    assert not tune.Tuner.can_restore(tmp_path / "nothing-here")


def test_the_docs_example_runs(tmp_path) -> None:
    """The README's Tune example runs as written, in a fresh process, and finds the minimum."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme[readme.index("### Tune"):], re.S)
    assert block is not None
    script = tmp_path / "example.py"
    script.write_text(block.group(1))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[0] == "True 20 0"
