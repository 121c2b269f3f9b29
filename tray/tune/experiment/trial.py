"""``Trial``: one configuration's run, as the controller, schedulers and searchers see it
(Ray's ``ray.tune.experiment.Trial``). Plain data; what runs it lives in the controller."""

from __future__ import annotations

import os
from typing import Any

from ..._air import Checkpoint, PlacementGroupFactory


class Trial:
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    def __init__(self, trainable_name: str, config: dict[str, Any], trial_id: str, *, experiment_tag: str = "",
                 evaluated_params: dict[str, Any] | None = None, resources: PlacementGroupFactory | None = None,
                 local_path: str = "", experiment_name: str = "", stopping_criterion: Any = None,
                 max_failures: int = 0) -> None:
        self.trainable_name = trainable_name
        self.config = config
        self.trial_id = trial_id
        self.experiment_tag = experiment_tag
        self.evaluated_params = evaluated_params or {}
        self.placement_group_factory = resources or PlacementGroupFactory([{"CPU": 1.0}])
        self.local_path = local_path  # the trial's folder
        self.experiment_name = experiment_name
        self.stopping_criterion = stopping_criterion
        self.max_failures = max_failures
        self.status = Trial.PENDING
        self.last_result: dict[str, Any] = {}
        self.metric_analysis: dict[str, dict[str, float]] = {}
        self.metric_n_steps: dict[str, dict[str, list[float]]] = {}
        self.num_failures = 0
        self.error: BaseException | None = None
        self.error_msg: str | None = None
        self.checkpoint: Checkpoint | None = None  # the latest
        self.checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = []  # kept ones, oldest first
        self.checkpoint_index = 0
        self.start_time: float | None = None
        self.restore_from: Checkpoint | None = None  # what the next start resumes from
        self.custom_trial_name: str | None = None

    # Ray's accessors
    @property
    def path(self) -> str:
        return self.local_path

    @property
    def local_dir(self) -> str:
        return os.path.dirname(self.local_path)

    @property
    def logdir(self) -> str:
        return self.local_path

    @property
    def trial_name(self) -> str:
        return str(self)

    @property
    def resources(self) -> dict[str, float]:
        return self.placement_group_factory.required_resources

    def is_finished(self) -> bool:
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    @property
    def latest_checkpoint_result(self) -> Any:
        return self.checkpoint

    def update_last_result(self, result: dict[str, Any]) -> None:
        self.last_result = result
        for metric, value in result.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            stats = self.metric_analysis.setdefault(metric, {"max": value, "min": value, "avg": value, "last": value})
            steps = self.metric_n_steps.setdefault(metric, {"5": [], "10": []})
            n = result.get("training_iteration", 1) or 1
            stats["max"] = max(stats["max"], value)
            stats["min"] = min(stats["min"], value)
            stats["avg"] = stats["avg"] + (value - stats["avg"]) / max(1, n)
            stats["last"] = value
            for k in ("5", "10"):
                window = steps[k]
                window.append(value)
                if len(window) > int(k):
                    del window[0]
                stats[f"last-{k}-avg"] = sum(window) / len(window)

    def __str__(self) -> str:
        return self.custom_trial_name or f"{self.trainable_name}_{self.trial_id}"

    def __repr__(self) -> str:
        return str(self)

    def __lt__(self, other: Trial) -> bool:
        return self.trial_id < other.trial_id
