"""``tune.Trainable``: the class API for a trial (Ray's ``ray.tune.Trainable``; RLlib's
algorithms subclass it). Subclasses implement ``setup``, ``step`` and optionally
``save_checkpoint``/``load_checkpoint``/``reset_config``/``cleanup``; ``train()`` runs one
step and adds the automatic fields (``training_iteration``, ``time_total_s``, ``done``...).
"""

from __future__ import annotations

import copy
import os
import pickle
import platform
import shutil
import socket
import tempfile
import time
import uuid
from datetime import datetime
from typing import Any

import attrs

from .._air import Checkpoint, PlacementGroupFactory, TrainContext
from .._air.config import default_storage_path

_DICT_CHECKPOINT = "_dict_checkpoint.pkl"
_TUNE_METADATA = ".tune_metadata"

# result keys Ray fills in (``ray.tune.result``)
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTEPS_TOTAL = "timesteps_total"
EPISODES_TOTAL = "episodes_total"
DONE = "done"
SHOULD_CHECKPOINT = "should_checkpoint"


def auto_fields(trial_id: str, experiment_id: str, now: float) -> dict[str, Any]:
    """Result fields that say when and where a result was made."""
    return {"trial_id": trial_id, "experiment_id": experiment_id, "date": datetime.fromtimestamp(now).strftime(
        "%Y-%m-%d_%H-%M-%S"), "timestamp": int(now), "pid": os.getpid(), "hostname": platform.node(),
        "node_ip": _node_ip()}


_IP: str | None = None


def _node_ip() -> str:
    global _IP
    if _IP is None:
        try:
            _IP = socket.gethostbyname(socket.gethostname())
        except OSError:
            _IP = "127.0.0.1"
    return _IP


@attrs.define
class TrainingResult:
    """What ``Trainable.save()`` returns: the checkpoint and the metrics at that point."""

    checkpoint: Checkpoint
    metrics: dict[str, Any]


class Trainable:
    """A trial as a class: ``train()`` steps it, ``save()``/``restore()`` checkpoint it."""

    def __init__(self, config: dict[str, Any] | None = None, logger_creator: Any = None, storage: Any = None,
                 *, _context: TrainContext | None = None) -> None:
        self.config = copy.deepcopy(config) if config is not None else {}
        self._context = _context or TrainContext()
        self._experiment_id = uuid.uuid4().hex
        self._iteration = 0
        self._time_total = 0.0
        self._timesteps_total: int | None = None
        self._episodes_total: int | None = None
        self._restored = False
        self._time_since_restore = 0.0
        self._timesteps_since_restore = 0
        self._iterations_since_restore = 0
        self._last_result: dict[str, Any] = {}
        self._result_logger: Any = None
        self._logdir = self._make_logdir(logger_creator)
        self._start_time = time.time()
        self.setup(copy.deepcopy(self.config))

    def _make_logdir(self, logger_creator: Any) -> str:
        """The trial's directory: Tune's trial dir; else the ``logdir`` of the logger that
        ``logger_creator(config)`` makes (Ray's hook; the logger then gets each result and is
        closed by ``stop()``); else, for a Trainable made by hand (``PPOConfig().build_algo()``),
        a fresh ``<Class>_<time>_*`` directory under the results dir (``$TRAY_RESULTS_DIR``, else
        ``~/tray_results``), where Ray puts it under ``~/ray_results``: never the temp dir."""
        if self._context.trial_dir:
            return self._context.trial_dir
        if logger_creator is not None:
            self._result_logger = logger_creator(copy.deepcopy(self.config))
            logdir = getattr(self._result_logger, "logdir", None)
            if not isinstance(logdir, str):
                raise TypeError(f"logger_creator must return a logger with a str .logdir (Ray's Logger), "
                                f"got {type(self._result_logger).__name__}")
            os.makedirs(logdir, exist_ok=True)
            return logdir
        results = default_storage_path()
        os.makedirs(results, exist_ok=True)
        stamp = datetime.today().strftime("%Y-%m-%d_%H-%M-%S")
        return tempfile.mkdtemp(prefix=f"{type(self).__name__}_{stamp}_", dir=results)

    # -- to implement ------------------------------------------------------------------
    def setup(self, config: dict[str, Any]) -> None:
        """Build the trial's state from ``config`` (called once, from ``__init__``)."""

    def step(self) -> dict[str, Any]:
        """One iteration of training; returns its metrics (``done: True`` ends the trial)."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | None:
        """Write the state into ``checkpoint_dir`` (or return a dict to be pickled there)."""
        raise NotImplementedError(f"{type(self).__name__} cannot checkpoint: implement save_checkpoint()")

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        """Restore from what ``save_checkpoint`` wrote: its dict if it returned one, else the directory."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore: implement load_checkpoint()")

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Take a new config in place (lets Tune reuse this actor for another trial); True if done."""
        return False

    def cleanup(self) -> None:
        """Release what ``setup`` took (called by ``stop()``)."""

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> dict[str, float] | PlacementGroupFactory | None:
        """The resources a trial of this class needs for ``config`` (None: Tune's default, one CPU)."""
        return None

    @classmethod
    def resource_help(cls, config: dict[str, Any]) -> str:
        return ""

    # -- what Tune calls ---------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run one ``step()`` and return its result with the automatic fields added."""
        start = time.time()
        result = self.step()
        if not isinstance(result, dict):
            raise TypeError(f"{type(self).__name__}.step() must return a dict, got {type(result).__name__}")
        result = dict(result)
        now = time.time()
        elapsed = result.get(TIME_THIS_ITER_S, now - start)
        self._iteration += 1
        self._iterations_since_restore += 1
        self._time_total += elapsed
        self._time_since_restore += elapsed
        if "timesteps_this_iter" in result and result["timesteps_this_iter"] is not None:
            self._timesteps_total = (self._timesteps_total or 0) + result["timesteps_this_iter"]
            self._timesteps_since_restore += result["timesteps_this_iter"]
        if "episodes_this_iter" in result and result["episodes_this_iter"] is not None:
            self._episodes_total = (self._episodes_total or 0) + result["episodes_this_iter"]
        result.setdefault(DONE, False)
        result.setdefault(TIMESTEPS_TOTAL, self._timesteps_total)
        result.setdefault(EPISODES_TOTAL, self._episodes_total)
        result[TRAINING_ITERATION] = self._iteration
        result[TIME_THIS_ITER_S] = elapsed
        result[TIME_TOTAL_S] = self._time_total
        result.update(auto_fields(self._context.trial_id, self._experiment_id, now))
        result["time_since_restore"] = self._time_since_restore
        result["timesteps_since_restore"] = self._timesteps_since_restore
        result["iterations_since_restore"] = self._iterations_since_restore
        result.setdefault("config", self.config)
        self._last_result = result
        if self._result_logger is not None and hasattr(self._result_logger, "on_result"):
            self._result_logger.on_result(result)
        return result

    def save(self, checkpoint_dir: str | None = None) -> TrainingResult:
        """Checkpoint into ``checkpoint_dir`` (default: ``checkpoint_NNNNNN`` in the logdir)."""
        target = checkpoint_dir or os.path.join(self._logdir, f"checkpoint_{self._iteration:06d}")
        os.makedirs(target, exist_ok=True)
        state = self.save_checkpoint(target)
        if isinstance(state, dict):
            with open(os.path.join(target, _DICT_CHECKPOINT), "wb") as f:
                pickle.dump(state, f)
        elif state is not None and not isinstance(state, str):
            raise TypeError(f"{type(self).__name__}.save_checkpoint() must return a dict, None or its directory, "
                            f"got {type(state).__name__}")
        with open(os.path.join(target, _TUNE_METADATA), "wb") as f:
            pickle.dump({"iteration": self._iteration, "timesteps_total": self._timesteps_total,
                         "time_total": self._time_total, "episodes_total": self._episodes_total}, f)
        return TrainingResult(Checkpoint(target), dict(self._last_result))

    def restore(self, checkpoint_path: str | Checkpoint | TrainingResult) -> None:
        """Load a checkpoint made by ``save()`` (a path, a ``Checkpoint`` or ``save()``'s result)."""
        if isinstance(checkpoint_path, TrainingResult):
            checkpoint_path = checkpoint_path.checkpoint
        checkpoint = checkpoint_path if isinstance(checkpoint_path, Checkpoint) else Checkpoint(checkpoint_path)
        with checkpoint.as_directory() as path:
            meta_file = os.path.join(path, _TUNE_METADATA)
            if os.path.exists(meta_file):
                with open(meta_file, "rb") as f:
                    meta = pickle.load(f)
                self._iteration = meta["iteration"]
                self._timesteps_total = meta["timesteps_total"]
                self._time_total = meta["time_total"]
                self._episodes_total = meta.get("episodes_total")
            dict_file = os.path.join(path, _DICT_CHECKPOINT)
            if os.path.exists(dict_file):
                with open(dict_file, "rb") as f:
                    self.load_checkpoint(pickle.load(f))
            elif checkpoint._local:
                self.load_checkpoint(path)
            else:  # the temp copy goes when as_directory ends: keep a copy for the trainable
                keep = tempfile.mkdtemp(prefix="restored_checkpoint_", dir=self._logdir)  # goes with the trial
                shutil.copytree(path, keep, dirs_exist_ok=True)
                self.load_checkpoint(keep)
        self._restored = True
        self._time_since_restore = 0.0
        self._timesteps_since_restore = 0
        self._iterations_since_restore = 0

    def stop(self) -> None:
        """End the trial: runs ``cleanup()`` (and closes a ``logger_creator``'s logger)."""
        self.cleanup()
        if self._result_logger is not None and hasattr(self._result_logger, "close"):
            self._result_logger.close()

    def reset(self, new_config: dict[str, Any], logger_creator: Any = None, storage: Any = None) -> bool:
        """Reset for another trial via ``reset_config``; counters start again when it succeeds."""
        ok = self.reset_config(copy.deepcopy(new_config))
        if ok:
            self.config = copy.deepcopy(new_config)
            self._iteration = 0
            self._time_total = 0.0
            self._timesteps_total = None
            self._episodes_total = None
            self._time_since_restore = 0.0
            self._timesteps_since_restore = 0
            self._iterations_since_restore = 0
        return ok

    def get_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)

    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def training_iteration(self) -> int:
        return self._iteration

    @property
    def logdir(self) -> str:
        return self._logdir

    @property
    def trial_name(self) -> str:
        return self._context.trial_name or "default"

    @property
    def trial_id(self) -> str:
        return self._context.trial_id or "default"

    @property
    def trial_resources(self) -> Any:
        return self._context.trial_resources
