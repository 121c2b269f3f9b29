"""``tray.timeline()``: what ran where and when, as a Chrome trace.

Each worker keeps the spans of its last tasks and actor calls in a bounded ring (a
``deque`` append of a tuple of two ``perf_counter_ns`` readings: no message, no lock,
nothing per task beyond that). ``tray.timeline`` asks every worker of every node for its
ring (bounded asks, all at once) and lays the spans out in the Chrome trace event format
that chrome://tracing and Perfetto read: one ``"ph": "X"`` event per span, ``pid`` = the
node (numbered, named by a ``process_name`` metadata event), ``tid`` = the worker's OS
pid (named by ``thread_name``; concurrent calls of an async actor get lanes of their own).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import Any

import trio

SPANS = 10_000  # per worker: the newest ones
ASK_TIMEOUT_S = 5.0


class Recorder:
    """A worker's ring of spans: ``(category, name, task_id, start_ns, end_ns, status)``.

    Times are ``perf_counter_ns`` (cheap, monotonic); ``anchor`` maps them to wall-clock
    time once, so the rings of different processes line up.
    """

    def __init__(self) -> None:
        self.spans: deque[tuple[str, str, str, int, int, str]] = deque(maxlen=SPANS)
        self.anchor = (time.time_ns(), time.perf_counter_ns())

    def dump(self, running: list[tuple[str, str, str, int]]) -> dict[str, Any]:
        """The ring and the spans still open (``running``), with the clock anchor."""
        now = time.perf_counter_ns()
        spans = list(self.spans.copy()) + [(cat, name, tid, t0, now, "running") for cat, name, tid, t0 in running]
        return {"anchor": self.anchor, "spans": spans}


async def collect(control: Any) -> list[dict[str, Any]]:
    """Every reachable worker's spans: ``{node_id, pid, worker_id, anchor, spans}`` each.
    A node or worker that does not answer in time is left out."""
    view = await control.view.ask()
    rows: list[dict[str, Any]] = []

    async def worker(proc: dict[str, Any]) -> None:
        with trio.move_on_after(ASK_TIMEOUT_S):
            try:
                dump = await proc["executor"].timeline.ask()
            except Exception:  # noqa: BLE001 - a worker that died meanwhile has nothing to show
                return
            rows.append({"node_id": proc["node_id"], "pid": proc["pid"], "worker_id": proc["worker_id"], **dump})

    async def node(scheduler: Any, nursery: trio.Nursery) -> None:
        with trio.move_on_after(ASK_TIMEOUT_S):
            try:
                procs = await scheduler.processes.ask()
            except Exception:  # noqa: BLE001 - a node that died meanwhile
                return
            for proc in procs:
                nursery.start_soon(worker, proc)

    async with trio.open_nursery() as nursery:
        for scheduler, *_rest in view.values():
            nursery.start_soon(node, scheduler, nursery)
    return rows


def chrome_trace(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chrome trace events (metadata first, then spans by start time) for ``collect``'s rows."""
    nodes = {n: i for i, n in enumerate(sorted({r["node_id"] for r in rows}), start=1)}
    meta: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                                   "args": {"name": f"node {node_id}"}} for node_id, pid in nodes.items()]
    events: list[dict[str, Any]] = []
    for row in rows:
        wall_ns, perf_ns = row["anchor"]
        pid = nodes[row["node_id"]]
        lanes: list[int] = []  # end time of the last span on each lane (async actors overlap)
        for cat, name, task_id, t0, t1, status in sorted(row["spans"], key=lambda s: s[3]):
            lane = next((i for i, end in enumerate(lanes) if end <= t0), len(lanes))
            if lane == len(lanes):
                lanes.append(t1)
                meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": _tid(row["pid"], lane),
                             "args": {"name": f"worker {row['pid']} ({row['worker_id']})" +
                                      (f" lane {lane}" if lane else "")}})
            lanes[lane] = t1
            events.append({"name": name, "cat": cat, "ph": "X", "ts": (wall_ns + t0 - perf_ns) / 1000,
                           "dur": (t1 - t0) / 1000, "pid": pid, "tid": _tid(row["pid"], lane),
                           "args": {"task_id": task_id, "status": status, "node_id": row["node_id"],
                                    "worker_id": row["worker_id"], "worker_pid": row["pid"]}})
    events.sort(key=lambda e: e["ts"])
    return meta + events


def _tid(pid: int, lane: int) -> int:
    """The worker's pid; lanes beyond the first (overlapping async calls) get ids past any pid."""
    return pid if lane == 0 else (lane << 22) + pid


def write(events: list[dict[str, Any]], filename: str | os.PathLike[str]) -> None:
    with open(filename, "w") as f:
        json.dump(events, f)
