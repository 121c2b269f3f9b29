"""The node's memory monitor: kills one worker before the machine runs out of memory.

Ray's semantics ("Out-Of-Memory Prevention"): every ``memory_monitor_refresh_ms`` (250;
0 turns the monitor off) it reads the node's memory usage, and above
``memory_usage_threshold`` (0.95) of the node's memory it SIGKILLs one worker process,
so the machine never swaps and the kernel's OOM killer, which may pick any process
(the node itself), never has to act. The scheduler records why the worker died; the
owner of the work it ran turns that into ``OutOfMemoryError`` and retries as Ray does.

Usage is that of the fullest of: the machine (``MemTotal - MemAvailable``), and each
memory cgroup (v2 or v1) this process is in that has a limit, counted as its usage less
its inactive page cache, which the kernel reclaims before it would kill anything (the
"working set" kubelet uses too).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from .. import _config
from ..actors import Actor
from ..exceptions import RayError
from ._scheduler import SCHEDULER_NAME

log = logging.getLogger("tray.cluster")

MEMORY_MONITOR_NAME = "tray.memory_monitor"
KILLED = "killed by the memory monitor"  # how a death reason that the owner maps to OutOfMemoryError starts
KILL_WAIT_S = 5.0  # how long the monitor waits to see its victim gone before it may pick another
OOM_RETRY_DELAY_S = 1.0  # Ray's task_oom_retry_delay_base_ms: a killed task's retry waits this, doubling
OOM_RETRY_DELAY_MAX_S = 60.0
GIB = 1 << 30
KINDS = ("idle", "task", "actor")  # what a kill loses, least first: nothing, a retried task, an actor's state


@attrs.frozen
class MemoryConfig:
    """The monitor's settings (Ray's names), as :mod:`tray._config` resolves them."""

    usage_threshold: float = 0.95
    refresh_ms: int = 250

    def __attrs_post_init__(self) -> None:
        _config.check_usage_threshold(self.usage_threshold)
        _config.check_refresh_ms(self.refresh_ms)

    @classmethod
    def of(cls, settings: _config.Settings) -> MemoryConfig:
        return cls(settings.memory_usage_threshold, settings.memory_monitor_refresh_ms)

    @classmethod
    def resolve(cls, system_config: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> MemoryConfig:
        """``_system_config`` over ``TRAY_*`` env vars (default ``os.environ``) over defaults."""
        return cls.of(_config.resolve(system_config, env))


@attrs.frozen
class Usage:
    """Memory in use against what is available, read from ``source``."""

    used: int
    total: int
    source: str

    @property
    def fraction(self) -> float:
        return self.used / self.total if self.total else 0.0


@attrs.frozen
class Worker:
    """A worker process the monitor may kill: ``rss`` is what its death frees."""

    worker_id: str
    pid: int
    rss: int
    kind: str  # one of KINDS


def kill_buffer(total: int) -> int:
    """How far below the threshold a kill should take usage (Ray's: 5% of memory, at most
    3 GiB), so that a worker still growing does not trigger a kill per tick."""
    return min(total // 20, 3 * GIB)


def choose_victim(usage: Usage, threshold: float, workers: Sequence[Worker]) -> Worker | None:
    """The worker to kill, or None when usage is within the threshold (or no worker holds memory).

    Among the workers whose death alone takes usage a buffer below the threshold, the
    kind whose loss costs least (an idle worker holding memory loses nothing; a task is
    retried, while an actor loses its state and restarts only as ``max_restarts`` allows,
    0 by default: Ray prefers retriable work too), the largest of that kind; when no
    single death suffices, the largest worker of all: it frees the most, and is the
    likeliest to be the one growing. (Ray picks the newest lease among retriable work;
    tray's leases outlive tasks, so their age says little, while RSS is measured.)
    """
    limit = threshold * usage.total
    holding = [w for w in workers if w.rss > 0]
    if usage.used <= limit or not holding:
        return None
    need = usage.used - limit + kill_buffer(usage.total)
    enough = [w for w in holding if w.rss >= need]
    if enough:
        return min(enough, key=lambda w: (KINDS.index(w.kind), -w.rss))
    return max(holding, key=lambda w: (w.rss, -KINDS.index(w.kind)))


def is_memory_kill(reason: str) -> bool:
    """Whether a worker's death reason (``death_of``) says the memory monitor killed it."""
    return reason.startswith(KILLED)


def oom_retry_delay(kills: int) -> float:
    """How long a task killed ``kills`` times by the monitor waits before it runs again (Ray's backoff)."""
    return min(OOM_RETRY_DELAY_S * 2 ** min(kills - 1, 16), OOM_RETRY_DELAY_MAX_S)


# ------------------------------------------------------------------ reading memory

_V2 = ("memory.max", "memory.current", b"inactive_file")
_V1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", b"total_inactive_file")


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return int(f.read())
    except (OSError, ValueError):  # absent, or "max": no limit
        return None


def _stat_value(path: str, key: bytes) -> int:
    try:
        with open(path, "rb") as f:
            for line in f:
                name, _, value = line.partition(b" ")
                if name == key:
                    return int(value)
    except OSError:
        pass
    return 0


class MemoryMeter:
    """Reads the node's memory usage (see the module's docstring); ``proc`` and
    ``cgroup_root`` are where /proc and the cgroup mount are (tests point them elsewhere)."""

    def __init__(self, proc: str = "/proc", cgroup_root: str = "/sys/fs/cgroup") -> None:
        self.meminfo = os.path.join(proc, "meminfo")
        self.cgroups = self._limited_cgroups(os.path.join(proc, "self", "cgroup"), cgroup_root,
                                             self._machine().total)

    def read(self) -> Usage:
        found = [self._machine()]
        for path, (limit_file, usage_file, inactive_key) in self.cgroups:
            limit, current = _read_int(f"{path}/{limit_file}"), _read_int(f"{path}/{usage_file}")
            if limit is not None and current is not None:
                inactive = _stat_value(f"{path}/memory.stat", inactive_key)
                found.append(Usage(max(current - inactive, 0), limit, f"cgroup {path}"))
        return max(found, key=lambda u: u.fraction)

    def _machine(self) -> Usage:
        fields: dict[bytes, int] = {}
        with open(self.meminfo, "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name in (b"MemTotal", b"MemAvailable"):
                    fields[name] = int(rest.split()[0]) * 1024
        total = fields[b"MemTotal"]
        return Usage(total - fields[b"MemAvailable"], total, "the machine")

    @staticmethod
    def _limited_cgroups(self_cgroup: str, root: str, ram: int) -> list[tuple[str, tuple[str, str, bytes]]]:
        """This process's memory cgroups (its own and their ancestors) with a limit below the
        machine's memory: inside a container that is the container's; outside, a systemd slice's."""
        try:
            with open(self_cgroup) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if not controllers and os.path.exists(os.path.join(root, "cgroup.controllers")):
                base, files = root, _V2
            elif "memory" in controllers.split(","):
                base, files = os.path.join(root, "memory"), _V1
            else:
                continue
            parts = [p for p in path.split("/") if p]
            for i in range(len(parts), -1, -1):
                directory = os.path.join(base, *parts[:i])
                limit = _read_int(os.path.join(directory, files[0]))
                if limit is not None and limit < ram:
                    found.append((directory, files))
        return found


_PAGE = os.sysconf("SC_PAGE_SIZE")


def private_rss(pid: int, proc: str = "/proc") -> int:
    """The resident memory of process ``pid`` that it does not share (resident less shared
    pages: the object store's mapped files stay when it dies); 0 if it is gone."""
    try:
        with open(os.path.join(proc, str(pid), "statm"), "rb") as f:
            fields = f.read().split()
    except OSError:
        return 0
    return max(int(fields[1]) - int(fields[2]), 0) * _PAGE


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


# ---------------------------------------------------------------------- the actor


class MemoryMonitor(Actor):
    """Polls the node's memory usage and kills one worker at a time while it is too high."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self.meter: MemoryMeter | None = None
        self._idle_warned = False  # said once per episode that nothing can be killed

    async def on_start(self) -> None:
        try:
            self.meter = MemoryMeter()
        except (OSError, KeyError, ValueError) as exc:  # not Linux, or an odd /proc
            log.warning("the memory monitor is off: cannot read this machine's memory usage (%s)", exc)
            return
        log.debug("memory monitor: threshold %.3f, every %d ms, watching %s", self.config.usage_threshold,
                  self.config.refresh_ms, ", ".join(["the machine", *(p for p, _ in self.meter.cgroups)]))
        self.start_soon(self._watch)

    async def _watch(self) -> None:
        assert self.meter is not None
        period = self.config.refresh_ms / 1000
        while True:
            await trio.sleep(period)
            usage = self.meter.read()
            if usage.used > self.config.usage_threshold * usage.total:
                await self._relieve(usage)
            else:
                self._idle_warned = False

    async def _relieve(self, usage: Usage) -> None:
        """Kill the worker ``choose_victim`` picks, and wait until the node has seen it go
        (one at a time, as Ray: its memory is only freed once it is gone)."""
        scheduler = self.system.lookup(SCHEDULER_NAME)
        if scheduler is None:
            return
        try:
            rows = await scheduler.processes.ask()
        except RayError:  # the scheduler is restarting: next tick
            return
        threshold = self.config.usage_threshold
        # A fresh idle worker (it never ran code) holds only an interpreter: killing it frees nothing useful.
        workers = [Worker(r["worker_id"], r["pid"], private_rss(r["pid"]), _kind(r))
                   for r in rows if r["job_id"] is not None]
        victim = choose_victim(usage, threshold, workers)
        if victim is None:
            if not self._idle_warned:
                self._idle_warned = True
                log.warning("memory usage of %s is %.1f%% (%s of %s), above memory_usage_threshold %.1f%%, but no "
                            "worker of this node holds memory to free", usage.source, 100 * usage.fraction,
                            _gib(usage.used), _gib(usage.total), 100 * threshold)
            return
        reason = (f"{KILLED}: memory usage of {usage.source} {100 * usage.fraction:.1f}% ({_gib(usage.used)} of "
                  f"{_gib(usage.total)}) > memory_usage_threshold {100 * threshold:.1f}% (worker {victim.worker_id}, "
                  f"pid {victim.pid}, {_KIND_WORDS[victim.kind]}, "
                  f"private RSS {_gib(victim.rss)})")
        log.warning("%s. Give the node more memory, run fewer tasks at once (more num_cpus or memory per task), "
                    "raise memory_usage_threshold, or set memory_monitor_refresh_ms=0 to turn the monitor off.",
                    reason)
        try:
            await scheduler.kill_worker.ask(victim.worker_id, reason)
            with trio.move_on_after(KILL_WAIT_S):
                await scheduler.death_of.ask(victim.worker_id)
        except RayError:
            pass


_KIND_WORDS = {"idle": "idle", "task": "running a task", "actor": "hosting an actor"}


def _kind(row: dict[str, Any]) -> str:
    return "actor" if row["actor_id"] is not None else "task" if row["leased"] else "idle"
