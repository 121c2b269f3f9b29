"""A run's state on disk, for ``Tuner.restore``: ``tuner.pkl`` (what was asked: param space,
configs; never the trainable, which ``restore`` is given again) and ``experiment_state.pkl``
(the trials, the search algorithm, the scheduler and the stopper, pickled together so their
references to one another survive), with ``experiment_state-<date>.json`` beside it for people.
Both are replaced atomically, so a driver killed mid-write leaves the previous state."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

import cloudpickle

from .._air import Checkpoint
from .._air.result import read_result_json
from ._files import atomic_write, jsonable
from .error import TuneError
from .experiment.trial import Trial

logger = logging.getLogger("tray.tune")
TUNER_FILE = "tuner.pkl"
STATE_FILE = "experiment_state.pkl"
_CKPT = re.compile(r"^checkpoint_(\d+)$")


def save_tuner(path: str, spec: dict[str, Any]) -> None:
    os.makedirs(path, exist_ok=True)
    atomic_write(os.path.join(path, TUNER_FILE), cloudpickle.dumps(spec))


def load_tuner(path: str) -> dict[str, Any]:
    file = os.path.join(path, TUNER_FILE)
    if not os.path.exists(file):
        raise ValueError(f"{path!r} holds no Tune run to restore (no {TUNER_FILE})")
    with open(file, "rb") as f:
        return cloudpickle.load(f)


def _portable_trial(trial: Trial) -> Trial:
    if trial.error is not None:
        try:
            cloudpickle.dumps(trial.error)
        except Exception:  # noqa: BLE001
            trial.error = TuneError(trial.error_msg or repr(trial.error))
    return trial


def save_state(controller: Any) -> None:
    path = controller.experiment_path
    for t in controller.get_trials():
        _portable_trial(t)
    state = {"trials": controller.get_trials(), "search_alg": controller.search_alg,
             "scheduler": controller.scheduler, "stopper": controller.stopper, "saved_at": time.time()}
    try:
        blob = cloudpickle.dumps(state)
    except Exception as exc:  # noqa: BLE001 - a user's searcher/scheduler/stopper that does not pickle
        if not getattr(controller, "_warned_unpicklable", False):
            controller._warned_unpicklable = True
            logger.warning("the search algorithm, scheduler or stopper cannot be pickled (%s): a restore of this "
                           "run will resume its trials but start no new ones", exc)
        blob = cloudpickle.dumps({**state, "search_alg": None, "scheduler": None, "stopper": None})
    atomic_write(os.path.join(path, STATE_FILE), blob)
    summary = {"trials": [{"trial_id": t.trial_id, "status": t.status, "path": t.local_path,
                           "config": jsonable(t.config), "num_failures": t.num_failures,
                           "checkpoint": t.checkpoint.path if t.checkpoint else None} for t in controller.get_trials()]}
    atomic_write(os.path.join(path, "experiment_state.json"), json.dumps(summary, indent=1).encode())


def load_state(path: str) -> dict[str, Any]:
    file = os.path.join(path, STATE_FILE)
    if not os.path.exists(file):
        raise ValueError(f"{path!r} holds no Tune run state ({STATE_FILE})")
    with open(file, "rb") as f:
        state = cloudpickle.load(f)
    for trial in state["trials"]:
        if not trial.is_finished():
            catch_up(trial)
    return state


def catch_up(trial: Trial) -> None:
    """A trial the state saw unfinished: take what its folder holds that the state may not
    (the driver may have died after more results and checkpoints were written)."""
    if not os.path.isdir(trial.local_path):
        return
    ckpts = sorted((int(m.group(1)), n) for n in os.listdir(trial.local_path) if (m := _CKPT.match(n))
                   and os.listdir(os.path.join(trial.local_path, n)))
    rows = read_result_json(os.path.join(trial.local_path, "result.json"))
    if ckpts:
        index, name = ckpts[-1]
        latest = Checkpoint(os.path.join(trial.local_path, name))
        if trial.checkpoint is None or trial.checkpoint.path != latest.path:
            trial.checkpoint = latest
            trial.checkpoints.append((latest, {}))
        trial.checkpoint_index = max(trial.checkpoint_index, index + 1)
    if rows:
        last = rows[-1]
        if trial.checkpoint is not None:
            # resume counting from the checkpointed result (later rows are re-run)
            with_ckpt = [r for r in rows if r.get("training_iteration") is not None]
            last = with_ckpt[-1] if with_ckpt else last
        trial.last_result = last
        for r in rows:
            trial.update_last_result(r)
        trial.last_result = last


def load_trials(path: str) -> list[Trial]:
    return load_state(path)["trials"]


def can_restore(path: str) -> bool:
    return os.path.exists(os.path.join(path, TUNER_FILE)) and os.path.exists(os.path.join(path, STATE_FILE))
