"""A trial's folder, laid out as Ray lays it out: ``params.json``/``params.pkl`` (its config),
``result.json`` (one JSON line per report), ``progress.csv`` (the same rows, flattened) and
``error.txt``/``error.pkl`` when it failed; checkpoints (``checkpoint_NNNNNN``) are written
beside them by the trial's runner. Rows are flushed per batch so a killed driver loses none."""

from __future__ import annotations

import csv
import json
import math
import os
import pickle
from typing import Any

from .._air.result import flatten


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return repr(value)


def to_json_line(result: dict[str, Any]) -> str:
    return json.dumps(result, default=_json_default, allow_nan=True)


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


class TrialFiles:
    """The open files of one trial's folder (driver side)."""

    def __init__(self, path: str, config: dict[str, Any]) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "params.json"), "w") as f:
            json.dump(config, f, default=_json_default, indent=2, sort_keys=True)
        try:
            with open(os.path.join(path, "params.pkl"), "wb") as f:
                import cloudpickle

                cloudpickle.dump(config, f)
        except Exception:  # noqa: BLE001 - params.json holds it readably anyway
            pass
        self._json = open(os.path.join(path, "result.json"), "a")  # noqa: SIM115 - kept open for the trial
        csv_path = os.path.join(path, "progress.csv")
        existing = os.path.exists(csv_path) and os.path.getsize(csv_path) > 0
        self._csv_file = open(csv_path, "a", newline="")  # noqa: SIM115
        self._fields: list[str] | None = None
        if existing:
            with open(csv_path, newline="") as f:
                self._fields = next(csv.reader(f), None)
        self._csv: csv.DictWriter[str] | None = None
        if self._fields:
            self._csv = csv.DictWriter(self._csv_file, self._fields, extrasaction="ignore")

    def write(self, result: dict[str, Any]) -> None:
        self._json.write(to_json_line(result) + "\n")
        row = {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in flatten(result).items()}
        if self._csv is None:
            self._fields = list(row)
            self._csv = csv.DictWriter(self._csv_file, self._fields, extrasaction="ignore")
            self._csv.writeheader()
        self._csv.writerow(row)

    def flush(self) -> None:
        self._json.flush()
        self._csv_file.flush()

    def close(self) -> None:
        self.flush()
        self._json.close()
        self._csv_file.close()


def write_error(path: str, error: BaseException | None, text: str) -> None:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "error.txt"), "w") as f:
        f.write(text)
    try:
        with open(os.path.join(path, "error.pkl"), "wb") as f:
            pickle.dump(error, f)
    except Exception:  # noqa: BLE001 - error.txt keeps it
        os.unlink(os.path.join(path, "error.pkl"))


def atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
