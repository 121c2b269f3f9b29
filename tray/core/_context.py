"""What runs now in this thread or asyncio task (a task or an actor call), for
``get_runtime_context()``: set by the worker around each one."""

from __future__ import annotations

import contextvars
import re
from typing import NamedTuple


class Running(NamedTuple):
    task_id: str
    name: str  # Ray's task name: the function's (or ``name=``), ``Class.method`` for calls
    function_name: str  # ``module.qualname`` of what runs


current: contextvars.ContextVar[Running | None] = contextvars.ContextVar("tray_running", default=None)

cancelled: set[str] = set()
"""The actor calls of this worker that ``tray.cancel`` reached while they waited or ran (by
task id): a waiting one is skipped, a running one sees ``is_canceled()``, until it ends."""

_GROUP = re.compile(r"^(?P<name>.+)_group_(?:(?P<index>\d+)_)?(?P<pg>[0-9a-f]+)$")


def split_shape(shape: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """A lease's resources in Ray's names (a placement group's bundle resources become the
    base ones), and the placement group they come from, if any."""
    out: dict[str, float] = {}
    pg = None
    wildcard: dict[str, float] = {}
    for key, amount in shape.items():
        m = _GROUP.match(key)
        if m is None:
            out[key] = out.get(key, 0) + amount
            continue
        pg = m["pg"]
        if m["name"] == "bundle":  # the marker every group's task carries
            continue
        target = out if m["index"] is not None else wildcard
        target[m["name"]] = target.get(m["name"], 0) + amount
    for key, amount in wildcard.items():
        out.setdefault(key, amount)
    return out, pg
