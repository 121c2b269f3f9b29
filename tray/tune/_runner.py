"""The trial runner: an actor (in a worker process, holding the trial's resources) that runs one
trial at a time in a thread and streams its results back in batches.

A controller ships a trainable to a runner once (with its first ``start``) and then runs trials on
it one after another: actors are reused across trials, so a trivial trial costs a few
milliseconds, not a process start. Results collect in a buffer that the controller drains with a
long-polling ``fetch(gen, ack)``; ``ack`` says how many results the controller has decided on,
and a trial runs at most ``window`` results ahead of that (window 1: every report waits for the
controller's verdict, as Ray's does; larger windows batch fast reports, and a report carrying a
checkpoint always waits, so a process death never loses a checkpoint). ``stop`` ends a run at
its next report (user code sees :class:`SessionStopped`, a BaseException).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any

from .._air import Checkpoint, Session, SessionStopped, TrainContext
from .._air.checkpoint import persist_directory
from .._air.session import init_session, shutdown_session
from .trainable import Trainable, auto_fields

FETCH_WAIT_S = 5.0
LINGER_S = 0.002  # how long a fetch with results waits for more (or for the run's end) when batching


def checkpoint_dir_name(index: int) -> str:
    return f"checkpoint_{index:06d}"


class _Run:
    """One trial's run inside the runner: its thread, buffer and flags."""

    def __init__(self, gen: int, spec: dict[str, Any]) -> None:
        self.gen = gen
        self.spec = spec
        self.cond = threading.Condition()
        self.buffer: list[tuple[dict[str, Any], str | None]] = []
        self.reported = 0  # results produced so far in this run
        self.acked = 0
        self.window = max(1, int(spec.get("window", 1)))
        self.stopping = False
        self.finished = False
        self.error: tuple[BaseException | None, str] | None = None
        self.trainable: Trainable | None = None
        self.iteration = int(spec.get("start_iteration", 0))
        self.time_total = float(spec.get("start_time_total", 0.0))
        self.checkpoint_index = int(spec.get("start_checkpoint_index", 0))
        self.last_time = time.time()
        self.start_time = self.last_time
        self.thread: threading.Thread | None = None

    def push(self, result: dict[str, Any], checkpoint_path: str | None) -> None:
        """Hand a result to the controller; wait while the run is ``window`` ahead of its verdicts."""
        with self.cond:
            if self.stopping:
                raise SessionStopped()
            self.buffer.append((result, checkpoint_path))
            self.reported += 1
            self.cond.notify_all()
            mine = self.reported
            # a report with a checkpoint waits for the controller to have it (as window 1 does):
            # checkpoints are what a restart resumes from, so none may die buffered with the process
            window = 1 if checkpoint_path is not None else self.window
            while not self.stopping and self.acked < mine - window + 1:
                self.cond.wait()
            if self.stopping:
                raise SessionStopped()


class TrialRunner:
    """The actor class (made remote by the controller, with the trial's resources)."""

    def __init__(self, num_cpus: float = 1.0) -> None:
        # as Ray does for its workers: math libraries use the trial's CPUs, not every core
        # (torch/numpy read this when first imported, which in a fresh runner is after now)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, int(num_cpus))))
        self._trainables: dict[str, Any] = {}
        self._run: _Run | None = None
        self._lock = threading.Condition()

    def ping(self) -> int:
        return os.getpid()

    # -- starting a trial ----------------------------------------------------------------
    def start(self, gen: int, key: str, spec: dict[str, Any], trainable: Any = None) -> dict[str, Any]:
        """Run a trial (``trainable``, when given, is loaded under ``key`` first) and return its
        first batch, as ``fetch(gen, 0)`` would: a trivial trial is one call."""
        if trainable is not None:
            self._trainables[key] = trainable
        trainable = self._trainables[key]
        run = _Run(gen, spec)
        with self._lock:
            old = self._run
            if old is not None and not old.finished:
                raise RuntimeError(f"trial runner busy with generation {old.gen}")
            self._run = run
            self._lock.notify_all()
        is_class = isinstance(trainable, type) and issubclass(trainable, Trainable)
        target = self._run_class if is_class else self._run_function
        run.thread = threading.Thread(target=target, args=(run, trainable), name=f"trial-{spec['trial_id']}",
                                      daemon=True)
        run.thread.start()
        return self.fetch(gen, 0)

    def _context(self, spec: dict[str, Any]) -> TrainContext:
        return TrainContext(experiment_name=spec["experiment_name"], trial_name=spec["trial_name"],
                            trial_id=spec["trial_id"], trial_dir=spec["trial_dir"],
                            trial_resources=spec.get("resources"), storage_path=spec.get("storage_path", ""))

    def _make_result(self, run: _Run, metrics: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        run.iteration += 1
        this_iter = now - run.last_time
        run.last_time = now
        run.time_total += this_iter
        spec = run.spec
        result = dict(metrics)
        result.setdefault("done", False)
        result["training_iteration"] = run.iteration
        result.update(auto_fields(spec["trial_id"], spec["experiment_id"], now))
        result["time_this_iter_s"] = this_iter
        result["time_total_s"] = run.time_total
        result["time_since_restore"] = now - run.start_time
        result["iterations_since_restore"] = run.iteration - int(spec.get("start_iteration", 0))
        return result

    def _persist(self, run: _Run, checkpoint: Checkpoint) -> str:
        """Copy a reported checkpoint into the trial's folder (``checkpoint_NNNNNN``)."""
        dest = os.path.join(run.spec["trial_dir"], checkpoint_dir_name(run.checkpoint_index))
        run.checkpoint_index += 1
        if checkpoint._local and os.path.abspath(checkpoint.path) == os.path.abspath(dest):
            return dest
        with checkpoint.as_directory() as src:
            persist_directory(src, dest)
        return dest

    def _run_function(self, run: _Run, fn: Any) -> None:
        spec = run.spec

        def sink(metrics: dict[str, Any], checkpoint: Checkpoint | None) -> None:
            if run.stopping:
                raise SessionStopped()
            path = self._persist(run, checkpoint) if checkpoint is not None else None
            run.push(self._make_result(run, metrics), path)

        start_ckpt = Checkpoint(spec["checkpoint"]) if spec.get("checkpoint") else None
        init_session(Session(sink, self._context(spec), start_ckpt))
        try:
            out = fn(spec["config"])
            if isinstance(out, dict) and out:  # Ray: a returned dict is a final report
                sink(out, None)
        except SessionStopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - user code: the controller decides what it means
            run.error = (exc, traceback.format_exc())
        finally:
            shutdown_session()
            self._finish(run)

    def _run_class(self, run: _Run, cls: type[Trainable]) -> None:
        spec = run.spec
        try:
            trainable = cls(spec["config"], _context=self._context(spec))
            run.trainable = trainable
            if spec.get("checkpoint"):
                trainable.restore(spec["checkpoint"])
            freq = int(spec.get("checkpoint_frequency") or 0)
            while not run.stopping:
                result = trainable.train()
                path = None
                if (freq and trainable.iteration % freq == 0) or result.get("should_checkpoint"):
                    path = self._save_class(run, trainable)
                run.push(result, path)
                if result.get("done"):
                    break
        except SessionStopped:
            pass
        except BaseException as exc:  # noqa: BLE001
            run.error = (exc, traceback.format_exc())
        finally:
            self._finish(run)

    def _save_class(self, run: _Run, trainable: Trainable) -> str:
        dest = os.path.join(run.spec["trial_dir"], checkpoint_dir_name(run.checkpoint_index))
        run.checkpoint_index += 1
        trainable.save(dest)
        return dest

    def _finish(self, run: _Run) -> None:
        with run.cond:
            run.finished = True
            run.cond.notify_all()

    # -- what the controller polls -------------------------------------------------------
    def fetch(self, gen: int, ack: int, wait_s: float = FETCH_WAIT_S) -> dict[str, Any]:
        """Results since the last fetch (waits up to ``wait_s`` for one); ``done`` once the run
        ended, with ``error`` (the exception and its traceback text) if user code raised."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while self._run is None or self._run.gen < gen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return {"results": [], "done": False}
                self._lock.wait(left)
            run = self._run
        if run.gen != gen:
            return {"results": [], "done": True, "stale": True}
        with run.cond:
            if ack > run.acked:
                run.acked = ack
                run.cond.notify_all()
            while not run.buffer and not run.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                run.cond.wait(left)
            if run.window > 1:  # fast reports: gather for a moment so one reply carries many
                until = time.monotonic() + LINGER_S
                while not run.finished and (left := until - time.monotonic()) > 0:
                    run.cond.wait(left)
            batch, run.buffer = run.buffer, []
            done = run.finished and not run.buffer
        out: dict[str, Any] = {"results": batch, "done": done}
        if done and run.error is not None:
            exc, tb = run.error
            out["error"] = (_portable(exc), tb)
        return out

    def stop(self, gen: int, save: bool = False, timeout: float = 10.0) -> dict[str, Any]:
        """End run ``gen`` at its next report (or step); for a class trainable, checkpoint it
        first when ``save``. ``stuck``: the user's code did not return within ``timeout``."""
        run = self._run
        if run is None or run.gen != gen:
            return {"stuck": False, "checkpoint": None}
        with run.cond:
            run.stopping = True
            run.cond.notify_all()
        if run.thread is not None:
            run.thread.join(timeout)
        stuck = run.thread is not None and run.thread.is_alive()
        checkpoint = None
        if not stuck and run.trainable is not None:
            try:
                if save and run.error is None:
                    checkpoint = self._save_class(run, run.trainable)
                run.trainable.stop()
            except Exception:  # noqa: BLE001 - a failing cleanup must not hide the trial's outcome
                pass
        return {"stuck": stuck, "checkpoint": checkpoint, "checkpoint_index": run.checkpoint_index}

    def save(self, gen: int) -> str | None:
        """Checkpoint a class trainable between steps (used by PBT for paused trials)."""
        run = self._run
        if run is None or run.gen != gen or run.trainable is None:
            return None
        return self._save_class(run, run.trainable)


def _portable(exc: BaseException | None) -> BaseException | None:
    """The exception itself when it pickles, else a RuntimeError carrying its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")
