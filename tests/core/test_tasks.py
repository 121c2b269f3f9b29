"""Tasks in real worker processes, as a Ray user writes them."""

import os
import time

import psutil
import pytest

import tray
from tray.exceptions import (
    GetTimeoutError,
    RayTaskError,
    TaskCancelledError,
    TaskUnschedulableError,
    WorkerCrashedError,
)
from tray.testing import signal_actor


@tray.remote
def square(x):
    return x * x


@tray.remote
def add(a, b):
    return a + b


@tray.remote
def describe(x):
    return type(x).__name__


@tray.remote
def fail(msg):
    raise KeyError(msg)


@tray.remote
def pid():
    return os.getpid()


@tray.remote
def nap(seconds):
    time.sleep(seconds)
    return os.getpid()


@tray.remote(num_returns=2)
def pair(x):
    return x, x + 1


@tray.remote
def fan_out(n):
    return sum(tray.get([square.remote(i) for i in range(n)]))


def test_squares(ray):
    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]


def test_top_level_refs_are_resolved_nested_refs_stay_refs(ray):
    x = ray.put(20)
    assert ray.get(add.remote(x, square.remote(2))) == 24
    assert ray.get(describe.remote(x)) == "int"
    assert ray.get(describe.remote([x])) == "list"

    @tray.remote
    def inner(refs):
        assert all(isinstance(r, tray.ObjectRef) for r in refs)
        return sum(tray.get(refs))

    assert ray.get(inner.remote([x, square.remote(3)])) == 29


def test_tasks_submit_tasks(ray):
    assert ray.get(fan_out.remote(10)) == sum(i * i for i in range(10))


def test_error_is_the_users_class_with_remote_traceback(ray):
    with pytest.raises(KeyError) as info:
        ray.get(fail.remote("nope"))
    err = info.value
    assert isinstance(err, RayTaskError)
    text = str(err)
    assert "nope" in text and "fail" in text and "Traceback" in text and "pid=" in text
    # an argument that is a failed ref fails the dependent task with the same error
    with pytest.raises(KeyError):
        ray.get(add.remote(fail.remote("dep"), 1))


def test_num_returns_and_options(ray):
    a, b = pair.remote(1)
    assert ray.get([a, b]) == [1, 2]
    x, y, z = square.options(num_returns=1).remote(2), *pair.options(max_retries=0).remote(5)
    assert ray.get([x, y, z]) == [4, 5, 6]
    assert pair.options(num_returns=0).remote(1) is None
    with pytest.raises(ValueError, match="Invalid option keyword 'num_cpu'"):
        square.options(num_cpu=1)
    with pytest.raises(TypeError, match="max_retries"):  # a wrong type: TypeError, as in Ray
        square.options(max_retries="many")
    with pytest.raises(TypeError, match="cannot be called directly"):
        square(1)


def test_unpicklable_argument_fails_at_remote_naming_it(ray):
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="square.remote().*lock"):
        square.remote(lock)

    @tray.remote
    def returns_lock():
        return threading.Lock()

    with pytest.raises(TypeError, match="lock"):
        ray.get(returns_lock.remote())


def test_get_timeout_and_wait(ray):
    slow = nap.remote(1.0)
    with pytest.raises(GetTimeoutError) as info:
        ray.get(slow, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    fast = square.remote(3)
    ready, not_ready = ray.wait([slow, fast], num_returns=1, timeout=5)
    assert ready == [fast] and not_ready == [slow]
    ready, not_ready = ray.wait([slow, fast], num_returns=2, timeout=0.01)
    assert fast in ready and slow in not_ready
    ready, not_ready = ray.wait([slow, fast], num_returns=2)
    assert ready == [slow, fast] and not_ready == []
    with pytest.raises(ValueError):
        ray.wait([fast, fast])
    with pytest.raises(ValueError, match="expects an ObjectRef or a list"):  # Ray's class for it
        ray.get("not a ref")
    with pytest.raises(TypeError, match="expects ObjectRefs"):
        ray.get(["not a ref"])
    with pytest.raises(ValueError, match="between 1 and 2"):
        ray.wait([slow, fast], num_returns=0)


def test_tasks_run_in_parallel_up_to_the_cpus(ray):
    ray.get([nap.remote(0) for _ in range(2)])  # both workers up
    start = time.monotonic()
    pids = ray.get([nap.remote(0.5) for _ in range(2)])
    assert time.monotonic() - start < 0.95
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_unschedulable_task_is_reported_not_hung(ray):
    start = time.monotonic()
    with pytest.raises(TaskUnschedulableError, match="CPU"):
        ray.get(square.options(num_cpus=64).remote(1), timeout=10)
    with pytest.raises(TaskUnschedulableError, match="gpu_box"):
        ray.get(square.options(resources={"gpu_box": 1}).remote(1), timeout=10)
    assert time.monotonic() - start < 2
    assert ray.get(square.options(resources={"custom": 1}).remote(3)) == 9


def test_worker_death_is_retried_then_reported(ray):
    marker = f"/tmp/tray-test-retry-{os.getpid()}"

    @tray.remote(max_retries=2)
    def die_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "survived"

    try:
        assert ray.get(die_once.remote(marker), timeout=30) == "survived"
    finally:
        os.unlink(marker)

    @tray.remote(max_retries=1)
    def always_die():
        os._exit(3)

    with pytest.raises(WorkerCrashedError, match="exited with code 3"):
        ray.get(always_die.remote(), timeout=30)


def test_retry_exceptions(ray):
    path = f"/tmp/tray-test-retryexc-{os.getpid()}"

    @tray.remote(max_retries=3, retry_exceptions=[ConnectionError])
    def flaky(path):
        with open(path, "a") as f:
            f.write("x")
        if len(open(path).read()) < 3:
            raise ConnectionError("try again")
        return "ok"

    try:
        assert ray.get(flaky.remote(path)) == "ok"
        assert open(path).read() == "xxx"
    finally:
        os.unlink(path)
    with pytest.raises(KeyError):  # not retried: retry_exceptions is off by default
        ray.get(fail.remote("once"))


@tray.remote
def nap_once_started(started, seconds):
    tray.get(started.send.remote())
    time.sleep(seconds)


def test_cancel_interrupts_a_running_task(ray):
    started = signal_actor()
    ref = nap_once_started.remote(started, 30)
    ray.get(started.wait.remote(), timeout=30)
    ray.cancel(ref)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=10)
    started = signal_actor()
    ref = nap_once_started.remote(started, 30)
    ray.get(started.wait.remote(), timeout=30)
    ray.cancel(ref, force=True)
    with pytest.raises((TaskCancelledError, WorkerCrashedError)):
        ray.get(ref, timeout=10)
    assert ray.get(square.remote(5)) == 25  # the node carries on


def test_worker_process_titles(ray):
    @tray.remote
    def titled():
        time.sleep(0.1)
        return psutil.Process().cmdline()[0]

    assert ray.get(titled.remote()) == "tray::titled"


def test_put_get_roundtrip_and_immutability(ray):
    value = {"a": [1, 2, 3]}
    ref = ray.put(value)
    value["a"].append(4)  # later changes are not seen
    assert ray.get(ref) == {"a": [1, 2, 3]}
    got = ray.get(ref)
    got["a"].clear()
    assert ray.get(ref) == {"a": [1, 2, 3]}
    with pytest.raises(TypeError):
        ray.put(ref)


def test_references_are_freed(ray):
    from tray.core import _runtime

    table = _runtime.current().table
    ray.get([square.remote(i) for i in range(200)])
    for i in range(300):
        ray.get(square.remote(i))
        ray.put(i)
    table.collect()
    time.sleep(0.2)
    table.collect()
    assert len(table.entries) < 50


@tray.remote
def countdown(n, pause):
    for i in range(n, 0, -1):
        time.sleep(pause)
        yield i
    if n == 2:
        raise ValueError("liftoff failed")


def test_streaming_generator_yields_refs_as_items_come(ray):
    gen = countdown.remote(3, 0.3)
    assert isinstance(gen, tray.ObjectRefGenerator)
    first = next(gen)
    assert ray.get(first) == 3  # (that items come before the task ends: test_generators.py)
    assert [ray.get(r) for r in gen] == [2, 1]
    assert gen.is_finished() and not gen.next_ready()
    assert ray.get(gen.completed(), timeout=60) is None
    refs = list(countdown.options(num_returns="streaming").remote(2, 0))
    assert ray.get(refs[0]) == 2 and ray.get(refs[1]) == 1
    with pytest.raises(ValueError, match="liftoff"):
        ray.get(refs[2])  # the generator's exception is its last item


def test_streaming_generator_async_iteration(ray):
    import trio

    async def consume():
        return [await ref async for ref in countdown.remote(3, 0)]

    assert trio.run(consume) == [3, 2, 1]


@tray.remote
def parent(depth):
    if depth == 0:
        return 1
    return sum(tray.get([parent.remote(depth - 1) for _ in range(2)]))


def test_tasks_waiting_on_tasks_lend_their_cpus_instead_of_deadlocking(ray):
    # 4 parents on 2 CPUs, each waiting on children that need a CPU too
    assert ray.get([parent.remote(2) for _ in range(4)], timeout=120) == [4, 4, 4, 4]
    assert ray.available_resources()["CPU"] == 2


def test_a_loop_of_waited_tasks_gives_its_lease_back_once_idle(ray):
    @ray.remote
    def one():
        return 1

    rt = tray.core._runtime.current()

    def cpus_free() -> float:  # as the node sees it, without giving idle leases back first
        return rt.call(rt.scheduler.resources.ask)[1]["CPU"]

    assert sum(ray.get(one.remote()) for _ in range(50)) == 50
    deadline = time.monotonic() + 10
    while cpus_free() < 2 and time.monotonic() < deadline:  # it lingers for the next task, briefly
        time.sleep(0.005)
    assert cpus_free() == 2
    ray.get(one.remote())
    assert ray.available_resources()["CPU"] == 2  # asked, an idle lease goes back at once


@tray.remote
def spawner(path):
    child = nap.remote(30)
    with open(path, "w") as f:
        f.write("started")
    tray.get(child)


def test_recursive_cancel_reaches_the_tasks_a_task_submitted(ray):
    path = f"/tmp/tray-test-cancel-{os.getpid()}"
    try:
        ref = spawner.remote(path)
        deadline = time.monotonic() + 20
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the child is running by now
        ray.cancel(ref)
        with pytest.raises(TaskCancelledError):
            ray.get(ref, timeout=10)
        # the child (30 s nap) was cancelled too: both CPUs are free again quickly
        deadline = time.monotonic() + 10
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ray.available_resources()["CPU"] == 2
    finally:
        if os.path.exists(path):
            os.unlink(path)


def test_a_small_task_passes_a_big_one_that_waits_for_room(ray):
    ray.get([nap.remote(0) for _ in range(2)])  # both workers up
    busy = nap.remote(1.0)  # holds one CPU
    time.sleep(0.2)
    big = nap.options(num_cpus=2).remote(0)  # waits for both CPUs
    time.sleep(0.2)
    small = square.remote(7)  # fits beside `busy` on the idle worker, ahead of `big`
    assert ray.get(small, timeout=10) == 49
    ray.get([busy, big], timeout=20)


def test_leases_of_a_dead_owner_come_back(ray):
    @ray.remote(num_cpus=1)
    def nap(s):
        time.sleep(s)
        return s

    @ray.remote(num_cpus=0)
    class Submitter:
        def flood(self, n):
            self.refs = [nap.remote(0.5) for _ in range(n)]  # its tasks hold the node's CPUs
            return len(self.refs)

    sub = Submitter.remote()
    assert ray.get(sub.flood.remote(20)) == 20
    ray.kill(sub)  # the owner of those tasks dies with leases in hand
    assert ray.get([nap.remote(0) for _ in range(4)], timeout=30) == [0] * 4


def _tiny_task_loop(ray, n):
    """Run ``n`` tiny tasks in batches; the driver's memory must not grow with ``n``."""
    from tray.core import _runtime

    rt = _runtime.current()
    me = psutil.Process()
    start_rss = None
    for done in range(0, n, 1000):
        assert ray.get([square.remote(j) for j in range(1000)])[-1] == 999 * 999
        if done == 5000:
            start_rss = me.memory_info().rss
    rt.table.collect()
    assert len(rt.table.entries) < 2000, "refs of finished tasks were not freed"
    assert not rt.owner.live and not rt.owner.running
    growth = me.memory_info().rss - start_rss
    assert growth < 64 << 20, f"the driver grew by {growth >> 20} MiB over {n} tasks"


def test_a_loop_of_tiny_tasks_runs_in_bounded_memory(ray):
    _tiny_task_loop(ray, 30_000)


@pytest.mark.slow
def test_a_million_tiny_tasks_run_in_bounded_memory(ray):
    _tiny_task_loop(ray, 1_000_000)
