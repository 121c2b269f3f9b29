"""tray.tune: hyperparameter search at Ray Tune's API (``from tray import tune``)."""

from .._air import Checkpoint, CheckpointConfig, FailureConfig, PlacementGroupFactory, RunConfig
from .search.sample import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from .trainable import Trainable

__all__ = ["Checkpoint", "CheckpointConfig", "FailureConfig", "PlacementGroupFactory", "RunConfig", "Trainable",
           "choice", "grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn",
           "quniform", "randint", "randn", "sample_from", "uniform"]
