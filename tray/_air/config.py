"""The run configuration objects Tune and Train share, with Ray 2.x's names, fields and defaults:
``RunConfig``, ``CheckpointConfig``, ``FailureConfig``, ``ScalingConfig``. Each checks its
fields when made, so a typo fails where it is written rather than minutes into a run."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .resources import PlacementGroupFactory, normalize_resources

DEFAULT_STORAGE_ENV = "TRAY_RESULTS_DIR"


def default_storage_path() -> str:
    """Where runs go when ``storage_path`` is not given: $TRAY_RESULTS_DIR, else ~/tray_results."""
    return os.environ.get(DEFAULT_STORAGE_ENV) or os.path.join(os.path.expanduser("~"), "tray_results")


@dataclasses.dataclass
class CheckpointConfig:
    """Which checkpoints to keep (``num_to_keep`` best by ``checkpoint_score_attribute``, newest
    when unset) and, for class trainables, how often to take them."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and (not isinstance(self.num_to_keep, int) or self.num_to_keep <= 0):
            raise ValueError(f"CheckpointConfig: num_to_keep must be a positive int or None, got {self.num_to_keep!r}")
        if self.checkpoint_score_order not in ("max", "min"):
            raise ValueError(f"CheckpointConfig: checkpoint_score_order must be 'max' or 'min', "
                             f"got {self.checkpoint_score_order!r}")
        if not isinstance(self.checkpoint_frequency, int) or self.checkpoint_frequency < 0:
            raise ValueError(f"CheckpointConfig: checkpoint_frequency must be an int >= 0, "
                             f"got {self.checkpoint_frequency!r}")


@dataclasses.dataclass
class FailureConfig:
    """``max_failures``: restarts of a trial (or Train run) from its latest checkpoint after its
    process fails (-1: forever); ``fail_fast``: stop the whole run at the first trial error
    (``"raise"``: and raise it)."""

    max_failures: int = 0
    fail_fast: bool | str = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_failures, int) or self.max_failures < -1:
            raise ValueError(f"FailureConfig: max_failures must be an int >= -1, got {self.max_failures!r}")
        if self.fail_fast not in (True, False, "raise"):
            raise ValueError(f"FailureConfig: fail_fast must be True, False or 'raise', got {self.fail_fast!r}")


@dataclasses.dataclass
class RunConfig:
    """Where a run's results go (``storage_path/name``) and how it runs: stop criteria,
    checkpoint and failure configs, verbosity, callbacks, the progress reporter."""

    name: str | None = None
    storage_path: str | None = None
    storage_filesystem: Any = None
    failure_config: FailureConfig | None = None
    checkpoint_config: CheckpointConfig | None = None
    sync_config: Any = None
    verbose: int | None = None
    stop: Any = None
    callbacks: list[Any] | None = None
    progress_reporter: Any = None
    log_to_file: bool | str | tuple[str, str] = False

    def __post_init__(self) -> None:
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
        if not isinstance(self.failure_config, FailureConfig):
            raise TypeError("RunConfig: failure_config must be a FailureConfig, "
                            f"got {type(self.failure_config).__name__}")
        if not isinstance(self.checkpoint_config, CheckpointConfig):
            raise TypeError(f"RunConfig: checkpoint_config must be a CheckpointConfig, "
                            f"got {type(self.checkpoint_config).__name__}")
        if self.storage_path is not None:
            self.storage_path = os.fspath(self.storage_path)
        if self.verbose is not None and self.verbose not in (0, 1, 2, 3):
            raise ValueError(f"RunConfig: verbose must be 0, 1, 2 or 3, got {self.verbose!r}")
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError("RunConfig: callbacks must be a list")

    def resolved_storage_path(self) -> str:
        return self.storage_path or default_storage_path()


@dataclasses.dataclass
class ScalingConfig:
    """How many Train workers and what each holds: ``num_workers`` workers of
    ``resources_per_worker`` (default one CPU, or one GPU with ``use_gpu``), plus the trainer's
    own ``trainer_resources``, placed with ``placement_strategy``."""

    trainer_resources: dict[str, float] | None = None
    num_workers: int = 1
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None
    placement_strategy: str = "PACK"
    accelerator_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_workers, int) or isinstance(self.num_workers, bool) or self.num_workers < 0:
            raise ValueError("ScalingConfig: num_workers must be an int >= 0 (0: run the loop in the calling "
                             f"process), got {self.num_workers!r}")
        if self.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
            raise ValueError(f"ScalingConfig: unknown placement_strategy {self.placement_strategy!r}")
        if self.resources_per_worker is not None:
            self.resources_per_worker = normalize_resources(self.resources_per_worker, what="resources_per_worker")
            if self.use_gpu and self.resources_per_worker.get("GPU", 0) == 0:
                raise ValueError("ScalingConfig: use_gpu=True but resources_per_worker asks for no GPU")
        if self.trainer_resources is not None:
            self.trainer_resources = normalize_resources(self.trainer_resources, what="trainer_resources")

    @property
    def _resources_per_worker_not_none(self) -> dict[str, float]:
        if self.resources_per_worker is not None:
            return dict(self.resources_per_worker)
        return {"CPU": 1.0, "GPU": 1.0} if self.use_gpu else {"CPU": 1.0}

    @property
    def _trainer_resources_not_none(self) -> dict[str, float]:
        return dict(self.trainer_resources) if self.trainer_resources is not None else {"CPU": 0.0}

    @property
    def num_cpus_per_worker(self) -> float:
        return self._resources_per_worker_not_none.get("CPU", 0.0)

    @property
    def num_gpus_per_worker(self) -> float:
        return self._resources_per_worker_not_none.get("GPU", 0.0)

    @property
    def additional_resources_per_worker(self) -> dict[str, float]:
        return {k: v for k, v in self._resources_per_worker_not_none.items() if k not in ("CPU", "GPU")}

    @property
    def total_resources(self) -> dict[str, float]:
        """Trainer plus every worker."""
        total = dict(self._trainer_resources_not_none)
        for k, v in self._resources_per_worker_not_none.items():
            total[k] = total.get(k, 0.0) + v * self.num_workers
        return {k: v for k, v in total.items() if v > 0}

    def as_placement_group_factory(self) -> PlacementGroupFactory:
        """Bundles: the trainer's first, then one per worker."""
        bundles = [self._trainer_resources_not_none] + [self._resources_per_worker_not_none] * self.num_workers
        return PlacementGroupFactory(bundles, strategy=self.placement_strategy)
