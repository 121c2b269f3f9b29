"""``tune.Callback`` (Ray's ``ray.tune.Callback``): hooks the controller calls as a run goes."""

from __future__ import annotations

from typing import Any

from ._tfevents import EventFile


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
    """TensorBoard event files in each trial's folder (Ray's default when tensorboardX is
    installed). They are written as TFRecords in the controller's loop (``_tfevents``), without a
    SummaryWriter thread per trial and without importing tensorboardX (which imports torch)."""

    def __init__(self) -> None:
        self._files: dict[str, EventFile] = {}

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        events = self._files.get(trial.trial_id)
        if events is None:
            events = self._files[trial.trial_id] = EventFile(trial.local_path)
        scalars = [(f"ray/tune/{k}", float(v)) for k, v in result.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("pid", "timestamp")]
        events.scalars(result.get("training_iteration", iteration), scalars)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        events = self._files.pop(trial.trial_id, None)
        if events is not None:
            events.close()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for events in self._files.values():
            events.flush()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for events in self._files.values():
            events.close()
        self._files.clear()
