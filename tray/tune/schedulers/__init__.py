"""Trial schedulers (Ray's ``ray.tune.schedulers``): early stopping and population training."""

from .async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from .hyperband import HyperBandScheduler
from .median_stopping_rule import MedianStoppingRule
from .pbt import PopulationBasedTraining, PopulationBasedTrainingReplay
from .trial_scheduler import FIFOScheduler, TrialScheduler

__all__ = ["ASHAScheduler", "AsyncHyperBandScheduler", "FIFOScheduler", "HyperBandScheduler", "MedianStoppingRule",
           "PopulationBasedTraining", "PopulationBasedTrainingReplay", "TrialScheduler", "create_scheduler"]


def create_scheduler(scheduler: str, **kwargs: object) -> TrialScheduler:
    table = {"fifo": FIFOScheduler, "async_hyperband": AsyncHyperBandScheduler, "asha": ASHAScheduler,
             "hyperband": HyperBandScheduler, "median_stopping_rule": MedianStoppingRule,
             "pbt": PopulationBasedTraining}
    if scheduler not in table:
        raise ValueError(f"unknown scheduler {scheduler!r}: one of {sorted(table)}")
    return table[scheduler](**kwargs)
