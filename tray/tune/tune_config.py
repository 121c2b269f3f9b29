"""``TuneConfig`` (Ray's ``ray.tune.TuneConfig``): what to search and how."""

from __future__ import annotations

import dataclasses
from typing import Any

from .schedulers.trial_scheduler import check_mode


@dataclasses.dataclass
class TuneConfig:
    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    reuse_actors: bool | None = None
    trial_name_creator: Any = None
    trial_dirname_creator: Any = None
    chdir_to_trial_dir: Any = None

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.metric is not None and not isinstance(self.metric, str):
            raise TypeError(f"TuneConfig: metric must be a string, got {type(self.metric).__name__}")
        if not isinstance(self.num_samples, int) or (self.num_samples < 1 and self.num_samples != -1):
            raise ValueError(f"TuneConfig: num_samples must be an int >= 1 (or -1: until the time budget ends), "
                             f"got {self.num_samples!r}")
        if self.max_concurrent_trials is not None and (not isinstance(self.max_concurrent_trials, int)
                                                       or self.max_concurrent_trials < 0):
            raise ValueError("TuneConfig: max_concurrent_trials must be an int >= 0, "
                             f"got {self.max_concurrent_trials!r}")
        if self.time_budget_s is not None:
            if hasattr(self.time_budget_s, "total_seconds"):
                self.time_budget_s = self.time_budget_s.total_seconds()
            if not isinstance(self.time_budget_s, (int, float)) or self.time_budget_s <= 0:
                raise ValueError(f"TuneConfig: time_budget_s must be a positive number, got {self.time_budget_s!r}")
