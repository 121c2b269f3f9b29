"""Stopping rules (Ray's ``ray.tune.stopper``); see :mod:`.stopper`."""

from .stopper import (
    CombinedStopper,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
    as_stopper,
)

__all__ = ["CombinedStopper", "ExperimentPlateauStopper", "FunctionStopper", "MaximumIterationStopper",
           "NoopStopper", "Stopper", "TimeoutStopper", "TrialPlateauStopper", "as_stopper"]
