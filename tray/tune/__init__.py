"""tray.tune: hyperparameter search at Ray Tune's API (``from tray import tune``).

``Tuner(trainable, param_space=..., tune_config=TuneConfig(...), run_config=RunConfig(...)).fit()``
-> ``ResultGrid``; ``tune.run(...)`` -> ``ExperimentAnalysis``; search spaces (``tune.uniform``,
``tune.grid_search``...), schedulers (``tray.tune.schedulers``), searchers (``tray.tune.search``),
stoppers (``tray.tune.stopper``). Trials run as actors that are reused across trials.
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from typing import Any

from .._air import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    PlacementGroupFactory,
    Result,
    RunConfig,
    get_checkpoint,
    get_context,
)
from .._air import session as _session
from . import track
from .analysis import ExperimentAnalysis
from .callback import Callback
from .error import TuneError
from .experiment.trial import Trial
from .progress_reporter import CLIReporter, JupyterNotebookReporter, ProgressReporter
from .registry import register_env, register_trainable
from .result_grid import ResultGrid
from .schedulers import create_scheduler
from .search import create_searcher
from .search import sample as _sample
from .search.sample import *  # noqa: F403 - the search-space functions, listed in sample.__all__
from .stopper import Stopper
from .trainable import Trainable
from .trainable_util import with_parameters, with_resources
from .tune import run, run_experiments
from .tune_config import TuneConfig
from .tuner import Tuner


def report(metrics: dict[str, Any] | None = None, *, checkpoint: Checkpoint | None = None, **kwargs: Any) -> None:
    """Report this step's ``metrics`` (and optionally a ``checkpoint``) from a function trainable;
    the older ``tune.report(acc=0.9)`` keyword form works too."""
    if metrics is None:
        metrics = kwargs
    elif kwargs:
        raise TypeError("tune.report: pass metrics as one dict or as keyword arguments, not both")
    _session.report(metrics, checkpoint=checkpoint)


__all__ = [
    "CLIReporter", "Callback", "Checkpoint", "CheckpointConfig", "ExperimentAnalysis", "FailureConfig",
    "JupyterNotebookReporter", "PlacementGroupFactory", "ProgressReporter", "Result", "ResultGrid", "RunConfig",
    "Stopper", "Trainable", "Trial", "TuneConfig", "TuneError", "Tuner", "create_scheduler", "create_searcher",
    "get_checkpoint", "get_context", "register_env", "register_trainable", "report", "run", "run_experiments",
    "track", "with_parameters", "with_resources", *_sample.__all__,
]
