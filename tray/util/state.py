"""Ray's state API (``ray.util.state``) for objects: what holds memory, where, and why.

Every process of the node answers for the objects it knows (the driver through its
owner actor, each worker through its executor); the store manager adds where stored
values are (shared memory or spilled) and the store's usage. No web server: the same
asks serve ``tray.util.state.list_objects()`` in a driver and ``tray memory`` in a shell.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any

import trio

from ..store import STORE_NAME

Filter = tuple[str, str, Any]

_ASK_TIMEOUT_S = 10.0


async def gather(system: Any, address: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, store_stats)`` of the node at ``address`` (default: the node ``system`` hosts)."""
    async def find(name: str) -> Any:
        return system.lookup(name) if address is None else await system.lookup_remote(address, name)

    scheduler, store, owner = await find("tray.scheduler"), await find(STORE_NAME), await find("tray.owner")
    if scheduler is None or store is None:
        raise ConnectionError(f"no tray node answers at {address or system.address}")
    stats = await store.stats.ask()
    placed = {r["object_id"]: r for r in await store.list_objects.ask()}
    sources = [owner.describe_objects] if owner is not None else []
    sources += [p["executor"].describe_objects for p in await scheduler.processes.ask()]
    rows: list[dict[str, Any]] = []

    async def collect(method: Any) -> None:
        with trio.move_on_after(_ASK_TIMEOUT_S):
            try:
                rows.extend(await method.ask())
            except Exception:  # noqa: BLE001 - a process that died meanwhile holds nothing
                pass

    async with trio.open_nursery() as nursery:
        for method in sources:
            nursery.start_soon(collect, method)
    for row in rows:
        where = placed.get(row.pop("store_key") or "")
        row["location"] = where["location"] if where is not None else "memory"
        row["pinned"] = where is not None and where["pins"] > 0  # read by a running task: not spilled
    rows.sort(key=lambda r: (-(r["object_size"] or 0), r["object_id"], r["pid"]))
    return rows, stats


def _apply(rows: list[dict[str, Any]], filters: Sequence[Filter] | None, limit: int | None) -> list[dict[str, Any]]:
    ops: dict[str, Callable[[Any, Any], bool]] = {"=": lambda a, b: str(a) == str(b),
                                                   "!=": lambda a, b: str(a) != str(b)}
    for key, op, value in filters or ():
        if op not in ops:
            raise ValueError(f"unsupported filter predicate {op!r}: use '=' or '!='")
        rows = [r for r in rows if key in r and ops[op](r[key], value)]
    return rows if limit is None else rows[:limit]


def _local() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ..core._api import _runtime_for_call

    rt = _runtime_for_call()
    rt.table.collect()  # refs dropped a moment ago are gone from the listing too
    if rt.node is None:
        return rt.call(gather, rt.system, rt.node_address)
    return rt.call(gather, rt.system)


def list_objects(*, filters: Sequence[Filter] | None = None, limit: int = 100, detail: bool = False,
                 **_ignored: Any) -> list[dict[str, Any]]:
    """One row per (object, process holding a reference): ``object_id``, ``object_size``,
    ``owner``, ``location`` (memory/spilled), ``storage`` (inline/shared_memory),
    ``reference_type`` (Ray's: LOCAL_REFERENCE, USED_BY_PENDING_TASK, ...), ``pid``, ``type``.

    ``filters`` are Ray's ``(key, "=" | "!=", value)`` triples; ``limit`` caps the rows.
    """
    rows, _stats = _local()
    return _apply(rows, filters, limit)


def summarize_objects(**_ignored: Any) -> dict[str, Any]:
    """Totals: the store's usage (budget, bytes in memory and spilled) and counts by kind."""
    rows, stats = _local()
    return summarize(rows, stats)


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
    """The text of ``tray memory``: every object reference, then the store's usage."""
    if rows is None or stats is None:
        rows, stats = _local()
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
    refs = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join([f"======== Object references status: {now} ========", "", *refs, "", *lines,
                      f"References: {len(rows)} to {len({r['object_id'] for r in rows})} object(s)"])


__all__ = ["list_objects", "memory_summary", "summarize_objects"]
