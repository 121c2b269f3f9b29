"""What a long ``tray.get`` does while it waits: warn once about what it waits on, and
show progress over many refs.

A get that waits longer than ``get_warn_after_s`` (a setting of :mod:`tray._config`: default
30 s; ``tray.init(_system_config={"get_warn_after_s": ...})`` or ``TRAY_GET_WARN_AFTER_S``,
read once into the runtime's settings and passed down to its workers) logs one
warning on the ``tray`` logger naming each pending ref's task and where it stands:
waiting for its arguments, for a worker (with which resources), or running on a node
(pid, for how long) — the question every silent hang raises. A get over
``PROGRESS_MIN`` refs or more shows a progress bar on stderr once it has waited
``PROGRESS_AFTER_S``, when stderr is a terminal (``TRAY_PROGRESS_BAR=0|1`` overrides).
Nothing here runs until a get has to wait.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import trio

from .. import _config
from ._objects import PENDING
from ._tasklog import RUNNING, SUBMITTED_TO_WORKER, call_task_id

if TYPE_CHECKING:
    from ..actors._crossing import Signal
    from ._objects import ObjectRef
    from ._runtime import Runtime

log = logging.getLogger("tray")

PROGRESS_MIN = 100
PROGRESS_AFTER_S = 0.5
PROGRESS_EVERY_S = 0.25
SHOWN = 10  # pending refs described in the warning
ASK_TIMEOUT_S = 1.0


def _progress_wanted(count: int) -> bool:
    if count < PROGRESS_MIN:
        return False
    wanted = _config.get("progress_bar")
    return sys.stderr.isatty() if wanted is None else wanted


class Watch:
    """One ``tray.get`` call's clock: when to warn, when to draw the progress bar."""

    __slots__ = ("refs", "start", "warn_at", "progress", "next_draw", "drawn")

    def __init__(self, refs: list[ObjectRef]) -> None:
        self.refs = refs
        self.start = time.monotonic()
        self.warn_at: float | None = None  # decided on the first wait, not on gets that never wait
        self.progress: bool | None = None
        self.next_draw = self.start + PROGRESS_AFTER_S
        self.drawn = False

    def wait(self, rt: Runtime, done: Signal, deadline: float | None) -> bool:
        """Wait for ``done`` (set when the value is ready) until ``deadline``;
        warn and draw meanwhile."""
        if self.warn_at is None:
            self.warn_at = self.start + rt.settings.get_warn_after_s  # resolved once, when the runtime was made
            self.progress = rt.worker_id is None and _progress_wanted(len(self.refs))  # a driver's terminal
        end = math.inf if deadline is None else deadline
        while True:
            wake = min(end, self.warn_at, self.next_draw if self.progress else math.inf)
            if done.wait(None if wake == math.inf else wake - time.monotonic()):
                return True
            now = time.monotonic()
            if now >= end:
                return False
            if now >= self.warn_at:
                self.warn_at = math.inf  # once per get
                self._warn(rt, now)
            if self.progress and now >= self.next_draw:
                self.next_draw = now + PROGRESS_EVERY_S
                self._draw(rt, now)

    def finish(self, rt: Runtime) -> None:
        """The get is over (and the bar was drawn): leave its last state on its own line."""
        self._draw(rt, time.monotonic())
        sys.stderr.write("\n")
        sys.stderr.flush()

    def _draw(self, rt: Runtime, now: float) -> None:
        entries = rt.table.entries
        total = len(self.refs)
        done = sum(1 for r in self.refs if (e := entries.get(r._id)) is None or e.state != PENDING)
        filled = 30 * done // total
        sys.stderr.write(f"\rtray.get: {done}/{total} done [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{now - self.start:.1f} s")
        sys.stderr.flush()
        self.drawn = True

    def _warn(self, rt: Runtime, now: float) -> None:
        entries = rt.table.entries
        pending = [r._id for r in self.refs if (e := entries.get(r._id)) is not None and e.state == PENDING]
        if not pending:
            return
        try:
            lines = rt.call(describe_pending, rt, pending[:SHOWN])
        except Exception as exc:  # noqa: BLE001 - the warning must not break the get
            lines = [f"(could not say why: {type(exc).__name__}: {exc})"]
        more = f"\n  ... and {len(pending) - SHOWN} more" if len(pending) > SHOWN else ""
        log.warning("tray.get has waited %.1f s for %d object(s):\n  %s%s", now - self.start, len(pending),
                    "\n  ".join(lines), more)


async def describe_pending(rt: Runtime, oids: list[str]) -> list[str]:
    """One line per pending object: its task and where it stands (runs in the runtime's loop)."""
    owner, entries = rt.owner, rt.table.entries
    by_ref: dict[str, tuple[Any, _Work]] = {}
    for key, rec in owner.tasks.live.items():  # tasks (keyed by their spec) and actor creations
        for rid in getattr(key, "return_ids", ()):
            by_ref[rid] = (key, _Work(rec["name"], rec["actor_id"], rec["state"], rec["task_id"]))
    for call in list(owner.tasks.calls):  # actor calls not done (a copy: callers add to it from their threads)
        q = owner.calls.actors.get(call.actor_id)
        sent = q is not None and call in q.inflight.values()
        work = _Work(call.method, call.actor_id, SUBMITTED_TO_WORKER if sent else "", call_task_id(call))
        for rid in call.return_ids:
            by_ref[rid] = (call, work)
    lines: dict[str, str] = {}

    async def one(oid: str) -> None:
        entry = entries.get(oid)
        key, rec = by_ref.get(oid, (None, None))
        if rec is None:
            lines[oid] = ("made by another process (its owner): waiting for it there"
                          if entry is not None and entry.owner is not None else "no task of this process makes it")
            return
        lines[oid] = f"{_what(rec)}: {await _where(rt, key, rec, by_ref)}"

    async with trio.open_nursery() as nursery:
        for oid in oids:
            nursery.start_soon(one, oid)
    return [f"ObjectRef({oid}) {lines[oid]}" for oid in oids]


class _Work(NamedTuple):
    """What the warning says of one task or actor call."""

    name: str
    actor_id: str | None
    state: str
    task_id: str


def _what(rec: Any) -> str:
    return f"task {rec.name}" if rec.actor_id is None else f"actor call {rec.name}"


async def _where(rt: Runtime, key: Any, rec: Any, by_ref: dict[str, tuple[Any, Any]]) -> str:
    """Where one task or actor call stands, in words."""
    owner, entries = rt.owner, rt.table.entries
    waiting_on = [oid for oid, _ in key.deps if (e := entries.get(oid)) is not None and e.state == PENDING]
    if waiting_on:
        named = [f"{oid} of {_what(by_ref[oid][1])}" if oid in by_ref else oid for oid in waiting_on[:3]]
        return f"waiting for its arguments ({len(waiting_on)} not ready: {', '.join(named)})"
    if rec.actor_id is not None:
        q = owner.calls.actors.get(rec.actor_id)
        executor = q.executor if q is not None else None
        if executor is None:
            return "waiting for its actor to start (or restart)"
        if rec.state not in (SUBMITTED_TO_WORKER, RUNNING):
            return "queued behind earlier calls to its actor"
        return await _running(executor, rec.task_id, "sent to its actor")
    lease = owner.running.get(rec.task_id)
    if lease is None:
        return await _resources(rt, key)
    return await _running(lease.executor, rec.task_id, "sent to a worker")


async def _running(executor: Any, task_id: str, sent: str) -> str:
    """What the worker says it runs: this task (for how long), or others ahead of it."""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            work = await executor.current_work.ask()
        except Exception as exc:  # noqa: BLE001 - its process may have just died
            return f"{sent}, which does not answer ({exc})"
        at = f"node {work['node_id']} (pid {work['pid']})"
        mine = [s for _cat, _name, span_id, s in work["running"] if span_id == task_id]
        if mine:
            if await _paused(executor, task_id):
                return f"paused at a breakpoint on {at} for {mine[0]:.1f} s: attach with `tray debug`"
            return f"running on {at} for {mine[0]:.1f} s"
        ahead = ", ".join(f"{name} (for {s:.1f} s)" for _cat, name, _id, s in work["running"]) or "nothing yet"
        return f"{sent} on {at}, queued; it runs {ahead}"
    return f"{sent}, which does not answer within {ASK_TIMEOUT_S:.0f} s"


async def _paused(executor: Any, task_id: str) -> bool:
    """Whether the worker's debugger holds the task (``tray.debug``): a wait that is no hang."""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            return task_id in (await executor.describe_tasks.ask()).get("paused", ())
        except Exception:  # noqa: BLE001 - its process may have just died: say it runs
            return False
    return False


async def _resources(rt: Runtime, spec: Any) -> str:
    """A task waiting for a lease: what it needs, and what the cluster has free."""
    from ..cluster._resources import from_units

    want = from_units(spec.shape)
    text = f"waiting for a worker with {want}"
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            view = await rt.control.view.ask()
        except Exception:  # noqa: BLE001 - the head is unreachable: say what we know
            return text
        free: dict[str, int] = {}
        for _sched, _total, node_free, _address in view.values():
            for k in spec.shape:
                free[k] = free.get(k, 0) + node_free.get(k, 0)
        text += f"; free now in the cluster ({len(view)} node(s)): {from_units(free)}"
    return text
