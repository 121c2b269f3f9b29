"""Ray's state API (``ray.util.state``): the cluster's nodes, actors, tasks, objects, workers,
jobs and placement groups, from any driver, without a web server.

Each call asks the control store, then every node and process at once, each ask bounded
by a timeout (see :func:`tray.lowlevel.cluster_state`); ``tray list`` and ``tray summary`` ask the
same questions from a shell. Rows have Ray's keys (dicts that also read as attributes, as
Ray's state objects do: ``row.state``); ``filters`` are Ray's
``(key, "=" | "!=", value)`` triples, ``limit`` caps the rows (None: all), ``detail``
adds the columns Ray shows only in detail. In a driver the cluster is the driver's; with
``address`` (or outside a driver) it is the one there, as ``tray list`` finds it. Ray's
other options (``timeout``, ``raise_on_missing_output``) are accepted and ignored: every
ask is bounded anyway, and a process that does not answer is left out. ``list_logs`` and
``get_log`` (in ``_logs``) read the workers' log files the same way.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

from .. import lowlevel
from ._logs import get_log, list_logs

Filter = tuple[str, str, Any]

# resource -> (the columns shown, those shown only with detail); a filter may name any of them
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nodes": (("node_id", "node_ip", "is_head_node", "state", "state_message", "node_name", "resources_total",
               "labels"), ("resources_available", "address", "pid", "start_time_ms", "end_time_ms")),
    "actors": (("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace"),
               ("is_detached", "num_restarts", "death_cause")),
    "tasks": (("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name",
               "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type"),
              ("error_message", "creation_time_ms", "start_time_ms", "end_time_ms")),
    "objects": (("object_id", "object_size", "task_status", "reference_type", "type", "pid", "ip", "node_id",
                 "owner", "owned", "location", "storage", "pinned", "reference_types"), ()),
    "workers": (("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid"),
                ("job_id", "actor_id", "leased")),
    "jobs": (("job_id", "submission_id", "entrypoint", "type", "status", "message", "error_type", "driver_info"),
             ("start_time", "end_time", "driver_node_id", "namespace")),
    "placement_groups": (("placement_group_id", "name", "creator_job_id", "state"),
                         ("bundles", "strategy", "is_detached", "ray_namespace", "bundles_to_node_id")),
}


def _apply(rows: list[dict[str, Any]], filters: Sequence[Filter] | None, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Rows passing every filter (values compare as text, as Ray's CLI gives them); a key
    outside ``keys`` or a predicate other than Ray's is an error."""
    ops: dict[str, Callable[[Any, Any], bool]] = {"=": lambda a, b: str(a) == str(b),
                                                   "!=": lambda a, b: str(a) != str(b)}
    for key, op, value in filters or ():
        if key not in keys:
            raise ValueError(f"unknown filter key {key!r}; valid keys: {', '.join(keys)}")
        if op not in ops:
            raise ValueError(f"unsupported filter predicate {op!r}: use '=' or '!='")
        rows = [r for r in rows if ops[op](r.get(key), value)]
    return rows


class StateRow(dict):
    """One row: a dict with Ray's keys that also reads as Ray's state objects do
    (``row.task_id`` as well as ``row["task_id"]``; ``asdict()``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"state row has no field {name!r}; it has {sorted(self)}") from None

    def asdict(self) -> dict[str, Any]:
        return dict(self)


def query(resource: str, filters: Sequence[Filter] | None = None, limit: int | None = 100, detail: bool = False,
          address: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """``(rows, how many matched before the limit)`` of one resource (``tray list``'s question)."""
    if resource not in KEYS:
        raise ValueError(f"unknown resource {resource!r}; one of: {', '.join(KEYS)}")
    columns, extra = KEYS[resource]
    keys = columns + extra
    _apply([], filters, keys)  # a bad filter is an error before anything is asked
    matched = _apply(lowlevel.cluster_state(resource, address=address), filters, keys)
    shown = columns if not detail else keys
    kept = matched if limit is None else matched[:limit]
    return [StateRow({k: r.get(k) for k in shown}) for r in kept], len(matched)


def list_nodes(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
               detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """Every node the cluster has known, alive or dead (Ray's NodeState rows)."""
    return query("nodes", filters, limit, detail, address)[0]


def list_actors(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
                detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """Every actor of the cluster, alive, restarting or dead (Ray's ActorState rows)."""
    return query("actors", filters, limit, detail, address)[0]


def list_tasks(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
               detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """The tasks and actor calls of every running job, newest first: the live ones and each
    process's last 10,000 finished (Ray's TaskState rows, a row per task: its latest attempt).
    ``state``: PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT (waiting for a worker),
    PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY (a call waiting for its actor or its turn),
    SUBMITTED_TO_WORKER, RUNNING, FINISHED or FAILED (with ``error_type``, and
    ``error_message`` in detail)."""
    return query("tasks", filters, limit, detail, address)[0]


def list_objects(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
                 detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """One row per (object, process holding a reference) on every node: ``object_id``,
    ``object_size``, ``owner``, ``location`` (memory/spilled), ``storage`` (inline/shared_memory),
    ``reference_type`` (Ray's: LOCAL_REFERENCE, USED_BY_PENDING_TASK, ...), ``pid``,
    ``node_id``, ``type`` (DRIVER/WORKER); the largest first."""
    return query("objects", filters, limit, detail, address)[0]


def list_workers(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
                 detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """Every worker process of every alive node, and every running job's driver (Ray's WorkerState rows)."""
    return query("workers", filters, limit, detail, address)[0]


def list_jobs(address: str | None = None, filters: Sequence[Filter] | None = None, limit: int | None = 100,
              detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """Every job (driver) the cluster has known, running or ended (Ray's JobDetails rows)."""
    return query("jobs", filters, limit, detail, address)[0]


def list_placement_groups(address: str | None = None, filters: Sequence[Filter] | None = None,
                          limit: int | None = 100, detail: bool = False, **_ignored: Any) -> list[dict[str, Any]]:
    """Every placement group, with its state (and in detail its bundles and their nodes)."""
    return query("placement_groups", filters, limit, detail, address)[0]


def _get(resource: str, key: str, id: str, address: str | None) -> dict[str, Any] | None:
    rows = query(resource, [(key, "=", id)], 1, True, address)[0]
    return rows[0] if rows else None


def get_node(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The node ``id``'s row, with detail; None if the cluster never had it."""
    return _get("nodes", "node_id", id, address)


def get_actor(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The row of the actor ``id``, with detail; None if there is none."""
    return _get("actors", "actor_id", id, address)


def get_task(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The row of task ``id`` (its latest attempt), with detail; None if there is none."""
    return _get("tasks", "task_id", id, address)


def get_worker(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The row of the worker process or driver ``id``, with detail; None if there is none."""
    return _get("workers", "worker_id", id, address)


def get_job(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The row of the job ``id``, with detail; None if there is none."""
    return _get("jobs", "job_id", id, address)


def get_placement_group(id: str, address: str | None = None, **_ignored: Any) -> dict[str, Any] | None:
    """The row of the placement group ``id``, with detail; None if there is none."""
    return _get("placement_groups", "placement_group_id", id, address)


def get_objects(id: str, address: str | None = None, **_ignored: Any) -> list[dict[str, Any]]:
    """Every row of the object ``id``: one per process holding a reference to it."""
    return query("objects", [("object_id", "=", id)], None, True, address)[0]


# ------------------------------------------------------------------------------ summaries


def summarize_tasks(address: str | None = None, **_ignored: Any) -> dict[str, Any]:
    """Ray's task summary: counts by function (or ``Class.method``) and state."""
    rows = query("tasks", limit=None, address=address)[0]
    summary: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = summary.setdefault(r["func_or_class_name"], {"func_or_class_name": r["func_or_class_name"],
                                                             "type": r["type"], "state_counts": {}})
        entry["state_counts"][r["state"]] = entry["state_counts"].get(r["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_tasks": sum(r["type"] == "NORMAL_TASK" for r in rows),
                        "total_actor_tasks": sum(r["type"] == "ACTOR_TASK" for r in rows),
                        "total_actor_scheduled": sum(r["type"] == "ACTOR_CREATION_TASK" for r in rows),
                        "summary_by": "func_name"}}


def summarize_actors(address: str | None = None, **_ignored: Any) -> dict[str, Any]:
    """Ray's actor summary: counts by class and state."""
    rows = query("actors", limit=None, address=address)[0]
    summary: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = summary.setdefault(r["class_name"], {"class_name": r["class_name"], "state_counts": {}})
        entry["state_counts"][r["state"]] = entry["state_counts"].get(r["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(rows), "summary_by": "class"}}


def summarize_objects(address: str | None = None, **_ignored: Any) -> dict[str, Any]:
    """Totals: counts by reference kind over the cluster; ``stores``: each node's store usage
    (budget, bytes in memory and spilled); ``store``: that of this driver's node (outside a
    driver: the head's)."""
    rows, stores, home = lowlevel.memory_state(address)
    return {**summarize(rows, stores.get(home, {}) if home is not None else {}), "stores": stores}


def home_store(stores: dict[str, Any], home: str | None) -> dict[str, Any]:
    """The store usage of ``home`` (from :func:`tray.lowlevel.memory_state`), or a
    ConnectionError saying why there is none: no live head in the cluster's node table, or
    that node's store did not answer in time (it is left out of ``stores``)."""
    if home is None:
        raise ConnectionError("no live head node answered: the cluster's node table has no ALIVE head, so there "
                              "is no object store to summarize (is the head running? see `tray status`)")
    if home not in stores:
        raise ConnectionError(f"the object store of node {home} did not answer in time; "
                              f"nodes whose stores answered: {', '.join(stores) or 'none'}")
    return stores[home]


def summarize(rows: list[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:
    by_type: dict[str, int] = {}
    for r in rows:
        by_type[r["reference_type"]] = by_type.get(r["reference_type"], 0) + 1
    return {"store": stats, "total_objects": len({r["object_id"] for r in rows}), "by_reference_type": by_type}


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def memory_summary(rows: list[dict[str, Any]] | None = None, stats: dict[str, Any] | None = None,
                   stats_only: bool = False) -> str:
    """The text of ``tray memory``: every object reference, then the store's usage (in a
    driver, without arguments: the objects of the whole cluster, the store of its node)."""
    if rows is None or stats is None:
        rows, stores, home = lowlevel.memory_state(None)
        stats = home_store(stores, home)
    budget, used = stats["budget"], stats["used"]
    lines = ["--- Object store ---",
             f"Shared memory: {_size(used)} used of {_size(budget)} ({100 * used / budget:.1f}%), "
             f"{stats['in_memory']} object(s) in memory",
             f"Spilled to disk: {_size(stats['spilled_bytes'])} ({stats['spills']} spill(s), "
             f"{stats['restores']} restore(s)) in {stats['spill_dir']}"]
    if stats_only:
        return "\n".join(lines)
    header = ("OBJECT_ID", "SIZE", "OWNER", "REFERENCE_TYPE", "LOCATION", "STORAGE", "PID", "TYPE")
    table = [header] + [(r["object_id"], _size(r["object_size"]), r["owner"], r["reference_type"], r["location"],
                         r["storage"] or "-", str(r["pid"]), r["type"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    now = datetime.datetime.now().isoformat(timespec="seconds")
    refs = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join([f"======== Object references status: {now} ========", "", *refs, "", *lines,
                      f"References: {len(rows)} to {len({r['object_id'] for r in rows})} object(s)"])


__all__ = ["get_actor", "get_job", "get_log", "get_node", "get_objects", "get_placement_group", "get_task",
           "get_worker", "list_actors", "list_jobs", "list_logs", "list_nodes", "list_objects",
           "list_placement_groups", "list_tasks", "list_workers", "memory_summary", "summarize_actors",
           "summarize_objects", "summarize_tasks"]
