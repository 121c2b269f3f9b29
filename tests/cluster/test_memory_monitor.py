"""The node's memory monitor: the decision (pure), reading memory (fake /proc and cgroup
files), and real kills: a local node whose threshold sits just above this machine's
current usage, and tasks and actors that allocate until the monitor kills them.

The machine is shared and noisy: the threshold is a margin (up to 2 GiB) above the usage
read at the start, so others may grow that much without a false kill, and a hog allocates
gradually until it is killed, up to 2.5 margins, so it crosses the threshold even if others
shrink meanwhile.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tray
from tray.cluster._memory import (
    KINDS,
    MEMORY_MONITOR_NAME,
    MemoryConfig,
    MemoryMeter,
    Usage,
    Worker,
    choose_victim,
    kill_buffer,
    oom_retry_delay,
    private_rss,
)
from tray.exceptions import ActorDiedError, OutOfMemoryError

GIB = 1 << 30
MIB = 1 << 20
CHUNK = 32 * MIB


# ------------------------------------------------------------------- the decision

workers_st = st.lists(st.tuples(st.integers(0, 16 * GIB), st.sampled_from(KINDS)), max_size=8).map(
    lambda rows: [Worker(f"w{i}", 1000 + i, rss, kind) for i, (rss, kind) in enumerate(rows)])


@settings(max_examples=300, deadline=None)
@given(total=st.integers(GIB, 256 * GIB), fraction=st.floats(0, 1), threshold=st.floats(0.05, 1.0),
       workers=workers_st)
def test_the_victim_follows_the_policy(total, fraction, threshold, workers):
    usage = Usage(int(total * fraction), total, "the machine")
    victim = choose_victim(usage, threshold, workers)
    holding = [w for w in workers if w.rss > 0]
    if usage.used <= threshold * total or not holding:
        assert victim is None  # within the threshold, or nothing to free: nobody dies
        return
    assert victim is not None and any(victim is w for w in holding)  # only a worker, and one holding memory
    need = usage.used - threshold * total + kill_buffer(total)
    enough = [w for w in holding if w.rss >= need]
    if enough:  # a single death suffices: it is one such, of the kind whose loss costs least, the largest
        assert victim.rss >= need
        assert not [w for w in enough if KINDS.index(w.kind) < KINDS.index(victim.kind)]
        assert victim.rss == max(w.rss for w in enough if w.kind == victim.kind)
    else:  # none does: the largest
        assert victim.rss == max(w.rss for w in holding)


def test_the_cheapest_sufficient_kind_goes_first():
    usage = Usage(97 * GIB, 100 * GIB, "the machine")  # 2 GiB over 95%, + a 3 GiB buffer: 5 GiB frees enough
    idle, task = Worker("w1", 1, 6 * GIB, "idle"), Worker("w2", 2, 8 * GIB, "task")
    actor = Worker("w3", 3, 9 * GIB, "actor")
    assert choose_victim(usage, 0.95, [actor, task, idle]) is idle  # nothing is lost
    assert choose_victim(usage, 0.95, [actor, task]) is task  # retried, while the actor's state would be lost
    small = Worker("w4", 4, GIB, "idle")
    assert choose_victim(usage, 0.95, [small, actor]) is actor  # the only death that helps
    assert choose_victim(usage, 0.95, [small, Worker("w5", 5, 2 * GIB, "actor")]).worker_id == "w5"  # the largest
    assert choose_victim(Usage(94 * GIB, 100 * GIB, "x"), 0.95, [actor, task, idle]) is None


def test_retries_of_killed_tasks_back_off_as_rays_do():
    assert [oom_retry_delay(n) for n in (1, 2, 3, 6, 7, 10_000)] == [1, 2, 4, 32, 60, 60]


# ------------------------------------------------------------------ configuration


def test_config_precedence_and_checks(monkeypatch):
    assert MemoryConfig.resolve({}, env={}) == MemoryConfig(0.95, 250)  # Ray's defaults
    env = {"TRAY_MEMORY_USAGE_THRESHOLD": "0.8", "TRAY_MEMORY_MONITOR_REFRESH_MS": "100"}
    assert MemoryConfig.resolve({}, env=env) == MemoryConfig(0.8, 100)
    assert MemoryConfig.resolve({"memory_usage_threshold": 0.5}, env=env) == MemoryConfig(0.5, 100)
    for bad in ({"memory_usage_threshold": 0}, {"memory_usage_threshold": 1.5},
                {"memory_monitor_refresh_ms": -1}, {"memory_monitor_refresh_ms": "often"}):
        with pytest.raises(ValueError, match="memory_"):
            MemoryConfig.resolve(bad, env={})
    with pytest.raises(ValueError, match="memory_usage_threshold"):  # checked before anything starts
        tray.init(num_cpus=1, _system_config={"memory_usage_threshold": 2})
    assert not tray.is_initialized()


def test_refresh_0_turns_the_monitor_off():
    from tray.core import _runtime

    tray.init(num_cpus=1, _system_config={"memory_monitor_refresh_ms": 0})
    try:
        assert _runtime.current().system.lookup(MEMORY_MONITOR_NAME) is None
    finally:
        tray.shutdown()


# ----------------------------------------------------------------- reading memory


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fake_proc(tmp_path, cgroup_lines, total_kib=16 * MIB, available_kib=12 * MIB):
    proc = tmp_path / "proc"
    _write(proc / "meminfo", f"MemTotal: {total_kib} kB\nMemFree: 1 kB\nMemAvailable: {available_kib} kB\n")
    _write(proc / "self" / "cgroup", cgroup_lines)
    return str(proc)


def test_meter_reads_the_machine_without_a_limited_cgroup(tmp_path):
    proc = _fake_proc(tmp_path, "0::/\n")
    _write(tmp_path / "cg" / "cgroup.controllers", "memory\n")
    _write(tmp_path / "cg" / "memory.max", "max\n")  # a v2 container without a limit
    usage = MemoryMeter(proc, str(tmp_path / "cg")).read()
    assert (usage.used, usage.total, usage.source) == (4 * GIB, 16 * GIB, "the machine")


def test_meter_reads_a_v2_cgroup_limit_less_its_inactive_cache(tmp_path):
    proc = _fake_proc(tmp_path, "0::/job/step\n")
    root = tmp_path / "cg"
    _write(root / "cgroup.controllers", "cpu memory\n")
    _write(root / "job" / "memory.max", f"{2 * GIB}\n")  # an ancestor's limit binds too
    _write(root / "job" / "memory.current", f"{GIB}\n")
    _write(root / "job" / "memory.stat", f"anon {GIB}\ninactive_file 0\n")
    _write(root / "job" / "step" / "memory.max", f"{8 * GIB}\n")
    _write(root / "job" / "step" / "memory.current", f"{3 * GIB}\n")
    _write(root / "job" / "step" / "memory.stat", f"active_file 5\ninactive_file {GIB}\n")
    meter = MemoryMeter(proc, str(root))
    assert len(meter.cgroups) == 2
    usage = meter.read()  # step: (3 - 1) / 8 = 25%; job: 1 / 2 = 50%; the machine: 25%
    assert (usage.used, usage.total) == (GIB, 2 * GIB) and usage.source.endswith("job")


def test_meter_reads_a_v1_cgroup_limit(tmp_path):
    proc = _fake_proc(tmp_path, "5:cpu:/\n4:memory:/box\n0::/\n")
    mem = tmp_path / "cg" / "memory"
    _write(mem / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    _write(mem / "box" / "memory.limit_in_bytes", f"{4 * GIB}\n")
    _write(mem / "box" / "memory.usage_in_bytes", f"{4 * GIB}\n")
    _write(mem / "box" / "memory.stat", f"inactive_file 1\ntotal_inactive_file {GIB}\n")
    usage = MemoryMeter(proc, str(tmp_path / "cg")).read()
    assert (usage.used, usage.total) == (3 * GIB, 4 * GIB)


def test_private_rss_leaves_out_shared_pages(tmp_path):
    page = os.sysconf("SC_PAGE_SIZE")
    _write(tmp_path / "42" / "statm", "1000 300 100 1 0 200 0\n")
    assert private_rss(42, str(tmp_path)) == 200 * page
    assert private_rss(43, str(tmp_path)) == 0  # gone
    assert private_rss(os.getpid()) > 0


# ------------------------------------------------------------------ real kills


def hog(cap: int) -> int:
    """Allocate and touch memory, a chunk at a time, until killed; ``cap`` bytes at most."""
    chunks = []
    while len(chunks) * CHUNK < cap:
        chunks.append(b"\1" * CHUNK)
        time.sleep(0.005)
    return len(chunks) * CHUNK


@pytest.fixture
def cap():
    """A local node whose monitor kills once usage grows a margin past today's; what a hog
    may hold at most (then it returns: the test fails, the machine is never at risk)."""
    usage = MemoryMeter().read()
    free = usage.total - usage.used
    margin = min(max(free // 6, 512 * MIB), 2 * GIB)  # others may grow this much without a false kill
    if free < 5 * margin:
        pytest.skip(f"{usage.source} has only {free / GIB:.1f} GiB free: too little to push its usage up safely")
    threshold = (usage.used + margin) / usage.total
    tray.init(num_cpus=2, _system_config={"memory_usage_threshold": threshold, "memory_monitor_refresh_ms": 50})
    yield 5 * margin // 2  # past the threshold even if others shrink by 1.5 margins meanwhile
    tray.shutdown()


def not_killed(held: int) -> str:
    usage = MemoryMeter().read()
    return f"the monitor never killed the hog: it holds {held / GIB:.2f} GiB, usage is {usage}"


@tray.remote(max_retries=0)
def hog_task(cap: int) -> int:
    return hog(cap)


@tray.remote(max_retries=1)
def hog_twice(counter: str, cap: int) -> int:
    """Hogs on its first two attempts, returns its attempt number on the third."""
    with open(counter, "a") as f:
        f.write(".")
    with open(counter) as f:
        attempt = len(f.read())
    if attempt <= 2:
        return -hog(cap)
    return attempt


def test_a_task_killed_without_retries_fails_with_out_of_memory(cap):
    with pytest.raises(OutOfMemoryError) as info:
        pytest.fail(not_killed(tray.get(hog_task.remote(cap), timeout=60)))
    text = str(info.value)
    assert "killed by the memory monitor" in text and "memory_usage_threshold" in text, text
    assert "not retried (max_retries=0)" in text and "running a task" in text


def test_a_killed_task_is_retried_without_spending_max_retries(cap, tmp_path):
    # Ray's rule: memory kills are retried (with backoff: 1 s, 2 s) while max_retries != 0, outside its budget
    attempt = tray.get(hog_twice.remote(str(tmp_path / "attempts"), cap), timeout=60)
    assert attempt == 3, not_killed(-attempt)


@tray.remote(max_restarts=1)
class Hog:
    def pid(self) -> int:
        return os.getpid()

    def hog(self, cap: int) -> int:
        return hog(cap)


def test_an_actor_killed_for_memory_restarts_as_max_restarts_allows(cap):
    actor = Hog.remote()
    first = tray.get(actor.pid.remote(), timeout=30)
    with pytest.raises(OutOfMemoryError, match="killed by the memory monitor.*hosting an actor"):
        pytest.fail(not_killed(tray.get(actor.hog.remote(cap), timeout=60)))
    second = tray.get(actor.pid.remote(), timeout=30)  # restarted (max_restarts=1), in a new process
    assert second != first
    with pytest.raises(OutOfMemoryError):
        pytest.fail(not_killed(tray.get(actor.hog.remote(cap), timeout=60)))
    with pytest.raises(ActorDiedError, match="killed by the memory monitor") as info:  # no restart left
        tray.get(actor.pid.remote(), timeout=30)
    assert "max_restarts=1" in str(info.value)
