"""``Result``: what one trial (or one Train run) ended with — its last metrics, latest
checkpoint, error, folder, every reported row as a DataFrame and its kept checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
from typing import Any

from .checkpoint import Checkpoint

_CKPT_DIR = re.compile(r"^checkpoint_(\d+)$")


@dataclasses.dataclass
class Result:
    metrics: dict[str, Any] | None
    checkpoint: Checkpoint | None
    error: BaseException | None = None
    path: str | None = None
    metrics_dataframe: Any = None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] | None = None
    _storage_filesystem: Any = None

    @property
    def config(self) -> dict[str, Any] | None:
        """The configuration the run used."""
        if self.metrics and "config" in self.metrics:
            return self.metrics["config"]
        return None

    @property
    def filesystem(self) -> Any:
        return self._storage_filesystem

    def get_best_checkpoint(self, metric: str, mode: str) -> Checkpoint | None:
        """Of ``best_checkpoints``, the one whose reported ``metric`` is best (``mode`` min/max)."""
        if mode not in ("min", "max"):
            raise ValueError(f"get_best_checkpoint: mode must be 'min' or 'max', got {mode!r}")
        scored = [(m[metric], c) for c, m in (self.best_checkpoints or []) if metric in m]
        if not scored:
            if self.best_checkpoints:
                raise RuntimeError(f"no checkpoint of this result reported the metric {metric!r}")
            return None
        pick = max if mode == "max" else min
        return pick(scored, key=lambda t: t[0])[1]

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> Result:
        """Read a finished trial's folder (``result.json``, ``params.json``, ``checkpoint_*``, ``error.pkl``)."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise RuntimeError(f"Result.from_path: {path!r} is not a directory")
        rows = read_result_json(os.path.join(path, "result.json"))
        metrics = rows[-1] if rows else {}
        if "config" not in metrics and os.path.exists(os.path.join(path, "params.json")):
            with open(os.path.join(path, "params.json")) as f:
                metrics = {**metrics, "config": json.load(f)}
        ckpts = sorted((int(m.group(1)), n) for n in os.listdir(path) if (m := _CKPT_DIR.match(n)))
        by_index = {r.get("_checkpoint_index"): r for r in rows if "_checkpoint_index" in r}
        best = [(Checkpoint(os.path.join(path, n)), by_index.get(i, {})) for i, n in ckpts]
        error = None
        if os.path.exists(os.path.join(path, "error.pkl")):
            try:
                with open(os.path.join(path, "error.pkl"), "rb") as f:
                    error = pickle.load(f)
            except Exception:  # noqa: BLE001 - a class that no longer imports: keep the text
                error = None
        if error is None and os.path.exists(os.path.join(path, "error.txt")):
            with open(os.path.join(path, "error.txt")) as f:
                error = RuntimeError(f.read())
        return cls(metrics=metrics, checkpoint=best[-1][0] if best else None, error=error, path=path,
                   metrics_dataframe=rows_to_dataframe(rows), best_checkpoints=best)

    def __repr__(self) -> str:
        shown = {k: v for k, v in (self.metrics or {}).items() if k != "config" and not isinstance(v, dict)}
        parts = [f"metrics={shown}", f"path={self.path!r}", f"checkpoint={self.checkpoint!r}"]
        if self.error is not None:
            parts.append(f"error={self.error!r}")
        return "Result(\n  " + ",\n  ".join(parts) + "\n)"


def read_result_json(file: str) -> list[dict[str, Any]]:
    """Every row of a ``result.json`` (one JSON object per line; a torn last line is skipped)."""
    if not os.path.exists(file):
        return []
    rows = []
    with open(file) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break
    return rows


def flatten(d: dict[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested dicts -> one level with ``a/b`` keys (Ray's flattening for DataFrames)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + sep, sep))
        else:
            out[key] = v
    return out


def rows_to_dataframe(rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of result rows (flattened), or None without pandas."""
    try:
        import pandas as pd
    except ImportError:
        return None
    return pd.DataFrame([flatten(r) for r in rows])
