"""Supervision configs: a TOML file (or a plain dict) describing a tree, read into a ``SupervisorSpec``.

::

    strategy = "one_for_one"          # supervisor fields at the top level
    intensity = 3
    period = 5.0

    [[children]]
    id = "db"
    start = "services:Database"       # "package.module:Class", importable from the file's folder
    kwargs = { path = "data.db" }
    backoff = { min = 0.1, max = 5.0, jitter = 0.2 }
    decider = { ValueError = "resume", "services:Fatal" = "escalate" }

    [[children]]
    id = "workers"
    [children.supervisor]             # a nested supervisor: same fields as the top level
    strategy = "simple_one_for_one"
    [[children.supervisor.children]]
    id = "worker"
    start = "services:Worker"

Every error is a :class:`ConfigError` naming the file, the child (as a dotted path of
ids) and the field.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..actors import MailboxSpec
from ._backoff import Backoff
from ._errors import ConfigError
from ._spec import ChildSpec, SupervisorSpec

SUPERVISOR_KEYS = {"strategy", "intensity", "period", "children", "auto_shutdown", "name"}
CHILD_KEYS = {
    "id", "start", "supervisor", "args", "kwargs", "restart", "shutdown", "type", "significant",
    "backoff", "decider", "name", "intensity", "period", "mailbox", "max_concurrency",
}  # fmt: skip


def load_config(config: str | Path | Mapping[str, Any]) -> SupervisorSpec:
    """Read a supervision config (a TOML file path, or a dict of the same shape) into a spec.

    For a file, its folder is put on ``sys.path`` (if not there) so ``start =
    "services:Worker"`` finds ``services.py`` beside it, and every child class is
    imported now, so a typo fails here rather than at the first restart.
    """
    if isinstance(config, Mapping):
        return _supervisor(config, None, None)
    path = Path(config)
    source = str(config)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("(file)", "no such file", source=source) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("(syntax)", f"invalid TOML: {e}", source=source) from None
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return _supervisor(data, None, source)


def _supervisor(data: Mapping[str, Any], where: str | None, source: str | None) -> SupervisorSpec:
    _check_keys(data, SUPERVISOR_KEYS, where, source)
    raw_children = data.get("children", [])
    if not isinstance(raw_children, list):
        raise ConfigError("children", "must be an array of tables ([[children]])", child=where, source=source)
    children = []
    for i, raw in enumerate(raw_children):
        if not isinstance(raw, Mapping):
            raise ConfigError("children", f"entry {i} must be a table", child=where, source=source)
        cid = raw.get("id")
        label = cid if isinstance(cid, str) and cid else f"#{i}"
        children.append(_child(raw, label if where is None else f"{where}.{label}", source))
    fields = {k: v for k, v in data.items() if k != "children"}
    try:
        return SupervisorSpec(children=children, **fields)
    except ConfigError as e:
        raise _locate(e, where, source) from None


def _child(data: Mapping[str, Any], where: str, source: str | None) -> ChildSpec:
    _check_keys(data, CHILD_KEYS, where, source)
    fields = dict(data)
    if "id" not in fields:
        raise ConfigError("id", "missing", child=where, source=source)
    sup = fields.pop("supervisor", None)
    if sup is not None:
        if "start" in fields:
            raise ConfigError("start", "a child has either 'start' or a 'supervisor' table, not both",
                              child=where, source=source)
        if not isinstance(sup, Mapping):
            raise ConfigError("supervisor", "must be a table", child=where, source=source)
        fields["start"] = _supervisor(sup, where, source)
    elif "start" not in fields:
        raise ConfigError("start", "missing: name the actor class as 'package.module:Class'",
                          child=where, source=source)
    if isinstance(fields.get("backoff"), Mapping):
        try:
            fields["backoff"] = Backoff(**fields["backoff"])
        except TypeError as e:
            raise ConfigError("backoff", str(e).replace("__init__() ", ""), child=where, source=source) from None
        except ConfigError as e:
            raise _locate(e, where, source) from None
    if isinstance(fields.get("mailbox"), Mapping):
        try:
            fields["mailbox"] = MailboxSpec(**fields["mailbox"])
        except (TypeError, ValueError) as e:
            raise ConfigError("mailbox", str(e), child=where, source=source) from None
    try:
        spec = ChildSpec(**fields)
        spec.actor_class()  # import it now: fail at load, not at the first restart
    except ConfigError as e:
        raise ConfigError(e.field, e.problem, child=where, source=source) from None
    return spec


def _check_keys(data: Mapping[str, Any], known: set[str], where: str | None, source: str | None) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(key, f"unknown field (known: {', '.join(sorted(known))})", child=where, source=source)


def _locate(e: ConfigError, where: str | None, source: str | None) -> ConfigError:
    return e.located(child=where, source=source)
