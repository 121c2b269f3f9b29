"""``tune.Callback`` (Ray's ``ray.tune.Callback``): hooks the controller calls as a run goes."""

from __future__ import annotations

from typing import Any


class Callback:
    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        pass

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        pass

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        pass

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        pass

    def on_trial_restore(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        pass

    def on_trial_save(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        pass

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        pass

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        pass

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        pass

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        pass

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        pass


class LoggerCallback(Callback):
    """A callback that writes each trial's results somewhere (``log_trial_*`` hooks)."""

    def log_trial_start(self, trial: Any) -> None:
        pass

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        pass

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        pass

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.log_trial_start(trial)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.log_trial_end(trial, failed=True)


class TBXLoggerCallback(LoggerCallback):
    """TensorBoard event files in each trial's folder (needs ``tensorboardX``)."""

    def __init__(self) -> None:
        from ..lowlevel import require

        self._tbx = require("tensorboardX", "tune")
        self._writers: dict[str, Any] = {}

    def log_trial_start(self, trial: Any) -> None:
        if trial.trial_id not in self._writers:
            self._writers[trial.trial_id] = self._tbx.SummaryWriter(trial.local_path, flush_secs=30)

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            self.log_trial_start(trial)
            writer = self._writers[trial.trial_id]
        step = result.get("training_iteration", iteration)
        for key, value in result.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("pid", "timestamp"):
                writer.add_scalar(f"ray/tune/{key}", value, global_step=step)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
