"""``tray.util.list_named_actors``: the names of the live named actors, as Ray lists them."""

from __future__ import annotations

from typing import Any

import tray

from .. import lowlevel


def list_named_actors(all_namespaces: bool = False) -> list[str] | list[dict[str, str]]:
    """The names of the live named actors in this job's namespace; with ``all_namespaces``,
    ``{"name": ..., "namespace": ...}`` for every namespace (Ray's two forms). Detached actors
    are listed as long as they live, whichever job made them."""
    if not isinstance(all_namespaces, bool):
        raise TypeError(f"all_namespaces must be a bool, got {type(all_namespaces).__name__}")
    rows: list[dict[str, Any]] = lowlevel.control_call("list_actors")
    live = [r for r in rows if r.get("name") and r.get("state") != "DEAD"]
    if all_namespaces:
        return [{"name": r["name"], "namespace": r["namespace"]} for r in live]
    namespace = tray.get_runtime_context().namespace
    return [r["name"] for r in live if r["namespace"] == namespace]
