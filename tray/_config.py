"""Every setting tray takes from ``TRAY_*`` environment variables and ``tray.init(_system_config=...)``.

One table, :data:`VARS`, names each setting's environment variable, its ``_system_config``
key (Ray's name) and how a raw value is parsed and checked; :func:`resolve` turns them into
frozen :class:`Settings`: the ``_system_config`` key over the variable over the default.
``tray.init`` resolves once and passes what it resolved down; a process started by tray
(a node, a worker) gets its settings as variables (:func:`to_env`) and resolves them when it
starts. A setting that may change while a process runs (a test's ``monkeypatch.setenv``) is
read at its use with :func:`get`.

To add a setting: a field of :class:`Settings` (its default) and a row of :data:`VARS`.
This module imports nothing of tray (the bottom of the layer map, beside ``exceptions``),
so every floor may read it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["VARS", "Settings", "Var", "env_name", "get", "resolve", "to_env"]


@attrs.frozen
class Settings:
    """Every setting's value; the defaults are tray's (Ray's where Ray has the setting)."""

    cluster_token: str | None = None  # None: a head makes one, a driver finds a local head's
    address: str | None = None  # tray.init()'s address when it is given none; "auto": this machine's head
    namespace: str = ""  # a worker's namespace (its driver's)
    job_id: str = ""  # a worker's job (its driver's)
    node_ip: str | None = None  # the address a cluster node binds and announces; its workers' too
    node_timeout_s: float = 5.0  # seconds of silence after which a node is declared dead
    get_warn_after_s: float = 30.0  # a tray.get waiting longer logs what it waits on
    progress_bar: bool | None = None  # None: a progress bar when stderr is a terminal
    memory_usage_threshold: float = 0.95  # the memory monitor kills a worker above this fraction
    memory_monitor_refresh_ms: int = 250  # how often the memory monitor looks (0: off)
    max_direct_call_object_size: int | None = None  # values larger go to the store (None: the store's 100 KiB)
    object_spilling_directory: str | None = None  # from Ray's object_spilling_config (None: the session's)
    test_seed: int | None = None  # tray.testing's seed for deterministic runs (None: a fresh one)
    post_mortem: bool = False  # a task that raises waits at the raising frame for `tray debug` (tray.debug)
    post_mortem_timeout_s: float = 300.0  # ... for so long, then it fails as usual
    debugger: str = "pdb"  # what breakpoint() in a worker opens: "pdb" (for `tray debug`) or "debugpy" (an IDE)
    debugger_external: bool = False  # debugger sessions bind the node's address, not loopback
    runtime_env: str = ""  # a worker's runtime_env as JSON, set by the node that starts it
    job_runtime_env: str = ""  # a submitted job's runtime_env as JSON: its driver's tasks run in it


Parse = Callable[[Any, str], Any]


@attrs.frozen
class Var:
    """One row of the table: the :class:`Settings` field, its variable, its ``_system_config``
    key, and how a raw value is parsed (``parse(raw, name)``; ``name`` is the variable or key
    it came from, for the error)."""

    field: str
    env: str | None
    key: str | None
    parse: Parse


# ------------------------------------------------------------------ parsers


def _text(raw: Any, name: str) -> str | None:
    """A string; empty counts as not set."""
    return str(raw) or None


def _text_or_empty(raw: Any, name: str) -> str:
    return str(raw)


def _number(kind: type, what: str) -> Parse:
    def parse(raw: Any, name: str) -> Any:
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {what}, got {raw!r}") from None

    return parse


def _node_timeout(raw: Any, name: str) -> float:
    value = _number(float, "a number of seconds")(raw, name)
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return float(value)


def _seconds_from_config(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return float(raw)


def _seconds_from_env(raw: str, name: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value


def check_usage_threshold(value: float) -> None:
    """The memory monitor's threshold is a fraction of memory in (0, 1]."""
    if not 0 < value <= 1:
        raise ValueError(f"memory_usage_threshold must be in (0, 1], got {value!r}")


def check_refresh_ms(value: int) -> None:
    """The memory monitor's period is >= 0 ms (0 turns it off)."""
    if value < 0:
        raise ValueError(f"memory_monitor_refresh_ms must be >= 0 (0: off), got {value!r}")


def _usage_threshold(raw: Any, name: str) -> float:
    value = _number(float, "a number")(raw, name)
    check_usage_threshold(value)
    return value


def _refresh_ms(raw: Any, name: str) -> int:
    value = _number(int, "an integer")(raw, name)
    check_refresh_ms(value)
    return value


def _progress_bar(raw: str, name: str) -> bool:
    return raw == "1"


def _object_size(raw: Any, name: str) -> int:
    if not isinstance(raw, int) or raw < 0:
        raise ValueError(f"{name} must be a number of bytes >= 0, got {raw!r}")
    return raw


def _spilling_directory(raw: Any, name: str) -> str | None:
    """Ray's ``object_spilling_config`` (JSON or a dict): its filesystem directory."""
    try:
        spilling = json.loads(raw) if isinstance(raw, str) else raw
        path = spilling.get("params", {}).get("directory_path")
    except (ValueError, AttributeError):
        raise ValueError(f"{name} must be Ray's spilling config, e.g. "
                         f"{{\"type\": \"filesystem\", \"params\": {{\"directory_path\": \"/tmp/spill\"}}}}, "
                         f"got {raw!r}") from None
    path = path[0] if isinstance(path, list) else path
    return None if path is None else str(path)


def _flag(raw: Any, name: str) -> bool:
    """On or off: a Python bool from ``_system_config``; "1"/"true"/"yes"/"on" (any case) from a variable."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0 (true or false), got {raw!r}")


def _debugger(raw: Any, name: str) -> str:
    text = str(raw).strip().lower() or "pdb"
    if text not in ("pdb", "debugpy"):
        raise ValueError(f"{name} must be 'pdb' or 'debugpy', got {raw!r}")
    return text


def _seed(raw: str, name: str) -> int | None:
    return _number(int, "an integer")(raw, name) if raw else None


# ------------------------------------------------------------------ the table

VARS: Mapping[str, Var] = {v.field: v for v in (
    Var("cluster_token", "TRAY_CLUSTER_TOKEN", None, _text),
    Var("address", "TRAY_ADDRESS", None, _text),
    Var("namespace", "TRAY_NAMESPACE", None, _text_or_empty),
    Var("job_id", "TRAY_JOB_ID", None, _text_or_empty),
    Var("node_ip", "TRAY_NODE_IP", None, _text),
    Var("node_timeout_s", "TRAY_NODE_TIMEOUT_S", None, _node_timeout),
    Var("get_warn_after_s", "TRAY_GET_WARN_AFTER_S", "get_warn_after_s", _seconds_from_env),
    Var("progress_bar", "TRAY_PROGRESS_BAR", None, _progress_bar),
    Var("memory_usage_threshold", "TRAY_MEMORY_USAGE_THRESHOLD", "memory_usage_threshold", _usage_threshold),
    Var("memory_monitor_refresh_ms", "TRAY_MEMORY_MONITOR_REFRESH_MS", "memory_monitor_refresh_ms", _refresh_ms),
    Var("max_direct_call_object_size", None, "max_direct_call_object_size", _object_size),
    Var("object_spilling_directory", None, "object_spilling_config", _spilling_directory),
    Var("test_seed", "TRAY_TEST_SEED", None, _seed),
    Var("post_mortem", "TRAY_DEBUG_POST_MORTEM", "post_mortem", _flag),
    Var("post_mortem_timeout_s", "TRAY_DEBUG_POST_MORTEM_TIMEOUT_S", None, _seconds_from_env),
    Var("debugger", "TRAY_DEBUGGER", None, _debugger),
    Var("debugger_external", "TRAY_DEBUGGER_EXTERNAL", None, _flag),
    Var("runtime_env", "TRAY_RUNTIME_ENV", None, _text_or_empty),
    Var("job_runtime_env", "TRAY_JOB_RUNTIME_ENV", None, _text_or_empty),
)}
"""Every setting, by :class:`Settings` field."""

_FROM_CONFIG: Mapping[str, Parse] = {"get_warn_after_s": _seconds_from_config}
"""Where a ``_system_config`` value (a Python value, not text) is checked apart from the variable's text."""


def _from_env(var: Var, env: Mapping[str, str]) -> Any:
    """The variable's value, parsed; None when it is not set (or set to nothing that counts)."""
    if var.env is None or var.env not in env:
        return None
    return var.parse(env[var.env], var.env)


def _from_config(var: Var, config: Mapping[str, Any]) -> Any:
    if var.key is None or config.get(var.key) is None:
        return None
    return _FROM_CONFIG.get(var.field, var.parse)(config[var.key], var.key)


def resolve(system_config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Every setting: ``system_config``'s key over ``env``'s variable (default ``os.environ``)
    over the default. Raises ValueError naming the key or variable whose value is bad.
    Keys of ``system_config`` tray has no use for are left alone, as Ray's own are many."""
    config = system_config or {}
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for field, var in VARS.items():
        value = _from_config(var, config)
        if value is None:
            value = _from_env(var, env)
        if value is not None:
            values[field] = value
    return Settings(**values)


def get(field: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment as it is now (default ``os.environ``), else its default."""
    value = _from_env(_var(field), os.environ if env is None else env)
    return getattr(Settings(), field) if value is None else value


def env_name(field: str) -> str:
    """The environment variable of a setting, e.g. ``env_name("cluster_token")`` -> ``"TRAY_CLUSTER_TOKEN"``."""
    name = _var(field).env
    if name is None:
        raise ValueError(f"setting {field!r} has no environment variable (it is a _system_config key only)")
    return name


def to_env(**values: Any) -> dict[str, str]:
    """Settings as the variables a child process resolves them from: ``to_env(cluster_token=t)``."""
    return {env_name(field): str(value) for field, value in values.items()}


def _var(field: str) -> Var:
    try:
        return VARS[field]
    except KeyError:
        raise ValueError(f"no setting named {field!r}; settings: {', '.join(VARS)}") from None
