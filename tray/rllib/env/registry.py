"""Named env creators (``tune.register_env(name, creator)``), visible to every process of the cluster.

A creator registered in the driver is kept here and, once a runtime runs, in the cluster's KV
table (as Ray keeps it in the GCS), so a Tune trial in another process finds it by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cloudpickle

import tray

_NAMESPACE = "tray.rllib"
_local: dict[str, Callable[[Any], Any]] = {}
_pending: set[str] = set()


def _key(name: str) -> str:
    return f"env_creator:{name}"


def register_env(name: str, env_creator: Callable[[Any], Any]) -> None:
    """Register ``env_creator(env_config) -> env`` under ``name`` (an env spec RLlib configs may name)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an env name must be a non-empty string, got {name!r}")
    if not callable(env_creator):
        raise TypeError(f"env_creator for {name!r} must be callable, got {env_creator!r}")
    _local[name] = env_creator
    _pending.add(name)
    flush()


def flush() -> None:
    """Publish the creators registered before the runtime started (a no-op without one)."""
    if not _pending or not tray.is_initialized():
        return
    from tray import lowlevel

    for name in sorted(_pending):
        lowlevel.kv_put(_key(name), cloudpickle.dumps(_local[name]), namespace=_NAMESPACE)
    _pending.clear()


def get_env_creator(name: str) -> Callable[[Any], Any] | None:
    """The creator registered under ``name`` here or anywhere in the cluster, or None."""
    if name in _local:
        return _local[name]
    if tray.is_initialized():
        from tray import lowlevel

        blob = lowlevel.kv_get(_key(name), namespace=_NAMESPACE)
        if blob is not None:
            _local[name] = cloudpickle.loads(blob)
            return _local[name]
    return None
