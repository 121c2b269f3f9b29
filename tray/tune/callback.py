"""``tune.Callback`` (Ray's ``ray.tune.Callback``): hooks the controller calls as a run goes."""

from __future__ import annotations

import os
import struct
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
    """TensorBoard event files in each trial's folder (needs ``tensorboardX``, whose protobufs and
    CRC it uses). It writes the TFRecord files itself, in the controller's loop: a SummaryWriter
    starts a thread per trial, which made event files the biggest cost of a run of short trials."""

    def __init__(self) -> None:
        from ..lowlevel import require

        require("tensorboardX", "tune")
        self._files: dict[str, _EventFile] = {}

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        events = self._files.get(trial.trial_id)
        if events is None:
            events = self._files[trial.trial_id] = _EventFile(trial.local_path)
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


class _EventFile:
    """One ``events.out.tfevents.*`` file: TFRecords (length, masked CRC32C, data, masked CRC32C)
    of ``Event`` protobufs, as TensorBoard reads them."""

    def __init__(self, directory: str) -> None:
        import socket
        import time

        from tensorboardX.proto import event_pb2, summary_pb2

        self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._file = open(os.path.join(directory, name), "ab")  # noqa: SIM115 - open for the trial's life
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data)))

    def scalars(self, step: int, values: list[tuple[str, float]]) -> None:
        import time

        summary = self._summary_pb2.Summary(value=[self._summary_pb2.Summary.Value(tag=tag, simple_value=v)
                                                   for tag, v in values])
        self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _masked_crc(data: bytes) -> int:
    from tensorboardX.crc32c import crc32c

    x = crc32c(data)
    return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF
