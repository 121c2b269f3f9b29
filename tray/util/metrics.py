"""Application metrics, Ray's API: ``Counter``, ``Gauge``, ``Histogram``.

Usable in drivers, tasks and actors. Each process keeps its metrics' values in memory
and, while tray is initialized, a background thread publishes a snapshot of them to the
cluster's KV table (namespace ``_tray_metrics``, one key per process) when they change,
and at least every ``HEARTBEAT_S``. The dashboard merges the snapshots per node and
exports them with the cluster's own metrics at ``/metrics`` in Prometheus' text format.

    from tray.util.metrics import Counter
    requests = Counter("app_requests", description="requests served", tag_keys=("route",))
    requests.set_default_tags({"route": "/"})
    requests.inc()
"""

from __future__ import annotations

import atexit
import bisect
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["Counter", "Gauge", "Histogram", "Metric"]

KV_NAMESPACE = "_tray_metrics"
KEY_PREFIX = "proc:"
FLUSH_S = 1.0
HEARTBEAT_S = 30.0
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

_lock = threading.Lock()
_registry: dict[str, Metric] = {}
_dirty = threading.Event()
_flusher: threading.Thread | None = None


class Metric:
    """What the three kinds share: a name, a description, tag keys and default tags."""

    kind = "untyped"

    def __init__(self, name: str, description: str = "", tag_keys: Sequence[str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a metric needs a non-empty name")
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        tag_keys = tuple(tag_keys or ())
        if not all(isinstance(k, str) for k in tag_keys):
            raise TypeError(f"tag_keys must be a tuple of str, got {tag_keys!r}")
        self._name, self._description, self._tag_keys = name, description, tag_keys
        self._default_tags: dict[str, str] = {}
        self._values: dict[tuple[str, ...], Any] = {}
        with _lock:
            _registry[name] = self

    @property
    def info(self) -> dict[str, Any]:
        return {"name": self._name, "description": self._description, "tag_keys": self._tag_keys,
                "default_tags": dict(self._default_tags)}

    def set_default_tags(self, default_tags: dict[str, str]) -> Metric:
        """Tags used when a record gives none for a key; keys must be among ``tag_keys``."""
        for k, v in default_tags.items():
            if k not in self._tag_keys:
                raise ValueError(f"unknown tag key {k!r} for metric {self._name!r}; tag_keys: {self._tag_keys}")
            if not isinstance(v, str):
                raise TypeError(f"tag values must be str, got {v!r} for {k!r}")
        self._default_tags = dict(default_tags)
        return self

    def _key(self, tags: dict[str, str] | None) -> tuple[str, ...]:
        merged = {**self._default_tags, **(tags or {})}
        extra = set(merged) - set(self._tag_keys)
        if extra:
            raise ValueError(f"unknown tag key(s) {sorted(extra)} for metric {self._name!r}; "
                             f"tag_keys: {self._tag_keys}")
        missing = [k for k in self._tag_keys if k not in merged]
        if missing:
            raise ValueError(f"missing value for tag key(s) {missing} of metric {self._name!r}")
        return tuple(str(merged[k]) for k in self._tag_keys)

    def _snapshot(self) -> dict[str, Any]:
        return {"name": self._name, "kind": self.kind, "description": self._description,
                "tag_keys": list(self._tag_keys), "samples": [[list(k), v] for k, v in self._values.items()]}

    def _changed(self) -> None:
        _dirty.set()
        _ensure_flusher()


class Counter(Metric):
    """A cumulative count that only goes up."""

    kind = "counter"

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        if not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"value must be a number > 0, got {value!r}")
        key = self._key(tags)
        with _lock:
            self._values[key] = self._values.get(key, 0.0) + float(value)
        self._changed()


class Gauge(Metric):
    """A value that goes up and down (the last one set)."""

    kind = "gauge"

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        if not isinstance(value, (int, float)):
            raise TypeError(f"value must be a number, got {value!r}")
        key = self._key(tags)
        with _lock:
            self._values[key] = float(value)
        self._changed()


class Histogram(Metric):
    """Observations counted in buckets with upper ``boundaries`` (plus +Inf), their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, description: str = "", boundaries: Sequence[float] | None = None,
                 tag_keys: Sequence[str] | None = None) -> None:
        bounds = list(boundaries or [])
        if not bounds:
            raise ValueError("a Histogram needs boundaries (a list of bucket upper bounds)")
        if any(not isinstance(b, (int, float)) or b <= 0 for b in bounds) or sorted(bounds) != bounds:
            raise ValueError(f"boundaries must be increasing numbers > 0, got {bounds!r}")
        self.boundaries = [float(b) for b in bounds]
        super().__init__(name, description, tag_keys)

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        if not isinstance(value, (int, float)):
            raise TypeError(f"value must be a number, got {value!r}")
        key = self._key(tags)
        with _lock:
            state = self._values.get(key)
            if state is None:
                state = self._values[key] = {"buckets": [0] * (len(self.boundaries) + 1), "sum": 0.0, "count": 0}
            state["buckets"][bisect.bisect_left(self.boundaries, value)] += 1
            state["sum"] += float(value)
            state["count"] += 1
        self._changed()

    def _snapshot(self) -> dict[str, Any]:
        out = super()._snapshot()
        out["boundaries"] = self.boundaries
        return out


# -------------------------------------------------------------------- publishing


def snapshot() -> list[dict[str, Any]]:
    """This process's metrics and their current values."""
    with _lock:
        return json.loads(json.dumps([m._snapshot() for m in _registry.values() if m._values]))


def flush() -> bool:
    """Publish this process's metrics now (if tray is initialized); whether they were."""
    import tray
    from tray import lowlevel

    if not tray.is_initialized() or lowlevel.in_loop():
        return False
    metrics = snapshot()
    if not metrics:
        return False
    info = lowlevel.runtime_info()
    record = {"ts": time.time(), "node_id": info.node_id, "pid": os.getpid(),
              "worker_id": info.worker_id, "job_id": info.job_id, "metrics": metrics}
    lowlevel.kv_put(f"{KEY_PREFIX}{info.node_id}:{os.getpid()}", json.dumps(record).encode(), namespace=KV_NAMESPACE)
    return True


def _flush_loop() -> None:
    last = 0.0
    while True:
        woke = _dirty.wait(HEARTBEAT_S)
        if woke:
            time.sleep(FLUSH_S)  # gather a burst of records into one publish
        _dirty.clear()
        if woke or time.monotonic() - last >= HEARTBEAT_S:
            try:
                flush()
            except Exception:  # noqa: BLE001 - the cluster is going away: the next publish retries
                pass
            last = time.monotonic()


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None or not _flusher.is_alive():
        with _lock:
            if _flusher is None or not _flusher.is_alive():
                _flusher = threading.Thread(target=_flush_loop, name="tray-metrics", daemon=True)
                _flusher.start()


@atexit.register
def _final_flush() -> None:
    if _dirty.is_set():
        try:
            flush()
        except Exception:  # noqa: BLE001 - at exit, best effort
            pass
