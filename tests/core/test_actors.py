"""Ray-style actors in real worker processes."""

import asyncio
import os
import time

import pytest
import trio

import tray
from tray.exceptions import ActorDiedError, RayActorError, RayTaskError


@tray.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def read(self):
        return self.n

    def pid(self):
        return os.getpid()

    def actor_id(self):
        return tray.get_runtime_context().get_actor_id()

    def fail(self):
        raise ZeroDivisionError("counter broke")

    @tray.method(num_returns=2)
    def both(self):
        return self.n, -self.n

    def record(self, x):
        self.seen = getattr(self, "seen", []) + [x]

    def records(self):
        return getattr(self, "seen", [])


@tray.remote
class AsyncWorker:
    def __init__(self):
        self.running = 0
        self.peak = 0

    async def work(self, seconds):
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1
        return self.peak

    async def await_ref(self, refs):
        return await refs[0]


@tray.remote
def call_counter(counter, times):
    return [tray.get(counter.incr.remote()) for _ in range(times)][-1]


def test_four_counters(ray):
    counters = [Counter.remote() for _ in range(4)]
    [c.incr.remote() for c in counters]
    assert ray.get([c.read.remote() for c in counters]) == [1, 1, 1, 1]
    pids = ray.get([c.pid.remote() for c in counters])
    assert len(set(pids)) == 4 and os.getpid() not in pids  # one process per actor
    for c in counters:
        ray.kill(c)


def test_calls_from_one_caller_run_in_order(ray):
    c = Counter.remote(10)
    refs = [c.incr.remote(i) for i in range(200)]
    assert ray.get(refs) == [10 + sum(range(i + 1)) for i in range(200)]
    assert ray.get(c.actor_id.remote()) == c._actor_id
    a, b = c.both.remote()
    assert ray.get([a, b]) == [ray.get(c.read.remote()), -ray.get(c.read.remote())]
    ray.kill(c)


def test_calls_keep_their_order_whichever_way_they_go(ray):
    """A call waited for goes from the caller's thread straight to the idle actor; one
    whose argument is not ready yet waits in the owner, and every call after it queues
    behind it; a burst goes through the loop. The actor sees submission order all the same."""
    @ray.remote
    def later(x):
        time.sleep(0.02)
        return x

    log = Counter.remote()
    expected = []
    for i in range(120):
        arg = later.remote(i) if i % 15 == 7 else i  # a dependency: this call and the next ones wait
        ref = log.record.remote(arg)
        expected.append(i)
        if i % 3 == 0:
            ray.get(ref)  # the actor idles: the next call may go straight from this thread
    assert ray.get(log.records.remote()) == expected
    ray.kill(log)


def test_errors_and_bad_use(ray):
    c = Counter.remote()
    with pytest.raises(ZeroDivisionError, match="counter broke"):
        ray.get(c.fail.remote())
    assert ray.get(c.incr.remote()) == 1  # the actor survives its method's exception
    with pytest.raises(AttributeError, match="nope"):
        c.nope.remote()
    with pytest.raises(TypeError, match="Counter.remote"):
        Counter()
    with pytest.raises(TypeError):
        c.incr()
    ray.kill(c)


def test_handles_pass_to_tasks(ray):
    c = Counter.remote()
    assert ray.get(call_counter.remote(c, 5)) == 5
    assert ray.get(c.read.remote()) == 5
    ray.kill(c)


def test_async_actor_runs_calls_concurrently(ray):
    a = AsyncWorker.options(max_concurrency=8).remote()
    ray.get(a.work.remote(0))
    start = time.monotonic()
    peaks = ray.get([a.work.remote(0.5) for _ in range(8)])
    assert time.monotonic() - start < 2.0
    assert max(peaks) == 8
    assert ray.get(a.await_ref.remote([ray.put("awaited")])) == "awaited"
    ray.kill(a)


def test_named_actors(ray):
    c = Counter.options(name="global-counter").remote(5)
    assert ray.get(ray.get_actor("global-counter").read.remote()) == 5
    with pytest.raises(ValueError, match="already exists"):
        Counter.options(name="global-counter").remote()
    same = Counter.options(name="global-counter", get_if_exists=True).remote()
    assert ray.get(same.incr.remote()) == 6
    with pytest.raises(ValueError, match="Failed to look up"):
        ray.get_actor("no-such-actor")
    ray.kill(c)


def test_kill_and_failed_construction(ray):
    c = Counter.remote()
    assert ray.get(c.incr.remote()) == 1
    ray.kill(c)
    with pytest.raises(ActorDiedError):
        ray.get(c.incr.remote(), timeout=10)

    @tray.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("cannot start")

        def ping(self):
            return "pong"

    b = Broken.remote()
    with pytest.raises(RayActorError, match="cannot start"):
        ray.get(b.ping.remote(), timeout=10)


def test_actor_dies_with_its_process(ray):
    c = Counter.remote()
    pid = ray.get(c.pid.remote())
    os.kill(pid, 9)
    with pytest.raises(RayActorError):
        ray.get(c.incr.remote(), timeout=10)


@tray.remote
class Phoenix:
    def __init__(self):
        self.n = 0
        self.born = time.monotonic()

    def incr(self):
        self.n += 1
        return self.n

    def pid(self):
        return os.getpid()

    def die(self):
        os._exit(1)


def eventually(call, attempts=300):
    """The first result of ``call`` that is not a RayActorError (the actor restarting)."""
    for _ in range(attempts):
        try:
            return call()
        except ActorDiedError as e:
            if "max_restarts" in str(e):
                raise
            time.sleep(0.1)
    raise AssertionError("the actor did not come back")


def test_max_restarts_reruns_init_and_then_gives_up(ray):
    p = Phoenix.options(max_restarts=1).remote()
    assert ray.get(p.incr.remote()) == 1
    first = ray.get(p.pid.remote())
    os.kill(first, 9)
    # a call sent before the death is noticed fails (no max_task_retries); once it is,
    # calls wait for the new incarnation, whose state starts afresh
    assert eventually(lambda: ray.get(p.incr.remote(), timeout=30)) == 1
    second = ray.get(p.pid.remote())
    assert second != first
    os.kill(second, 9)
    for _ in range(300):  # once its death is known, every call fails at once, saying why
        with pytest.raises(ActorDiedError) as info:
            ray.get(p.incr.remote(), timeout=30)
        if "max_restarts=1" in str(info.value):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"never told why: {info.value}")
    start = time.monotonic()
    with pytest.raises(ActorDiedError, match="max_restarts=1"):
        ray.get(p.incr.remote(), timeout=30)
    assert time.monotonic() - start < 1


def test_max_task_retries_resends_calls_in_flight(ray):
    p = Phoenix.options(max_restarts=-1, max_task_retries=-1).remote()
    assert ray.get(p.incr.remote()) == 1
    dying = p.die.options(max_task_retries=0).remote()
    after = [p.incr.remote() for _ in range(3)]
    with pytest.raises(RayActorError):
        ray.get(dying, timeout=30)
    assert ray.get(after, timeout=30) == [1, 2, 3]  # re-sent to the restarted actor, in order
    no_retry = Phoenix.options(max_restarts=1).remote()
    ray.get(no_retry.incr.remote())
    lost = no_retry.die.remote()
    with pytest.raises(RayActorError):
        ray.get(lost, timeout=30)
    assert ray.get(no_retry.incr.remote(), timeout=30) == 1  # restarted, the lost call not re-run
    ray.kill(p)
    ray.kill(no_retry)


def test_kill_with_restart(ray):
    p = Phoenix.options(max_restarts=1).remote()
    first = ray.get(p.pid.remote())
    ray.kill(p, no_restart=False)  # asynchronous, as in Ray: a call may still reach the old process

    def new_pid():
        pid = ray.get(p.pid.remote(), timeout=30)
        if pid == first:
            raise ActorDiedError("not restarted yet")
        return pid

    assert eventually(new_pid) != first
    ray.kill(p)
    with pytest.raises(ActorDiedError):
        ray.get(p.pid.remote(), timeout=30)


def test_an_actor_ends_when_its_last_handle_is_gone(ray):
    import gc

    import psutil

    def counters_alive():
        alive = 0
        for p in psutil.Process().children(recursive=True):  # workers are the zygote's children
            try:
                alive += "tray::Counter" in " ".join(p.cmdline())
            except psutil.Error:  # gone (or a zombie) while we looked
                pass
        return alive

    before = counters_alive()
    for _ in range(5):  # handles dropped at once, each after its call is done
        assert ray.get(Counter.remote(1).incr.remote()) == 2
    kept = Counter.remote()
    named = Counter.options(name="stays").remote()
    ray.get([kept.incr.remote(), named.incr.remote()])
    gc.collect()
    deadline = time.monotonic() + 10
    while counters_alive() > before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counters_alive() == before + 2  # the two whose handles are still held
    assert ray.get(kept.incr.remote()) == 2
    ray.kill(kept)
    ray.kill(named)


@tray.remote
class LoopKind:
    async def kind(self):
        return type(asyncio.get_running_loop()).__module__


def test_async_actors_run_on_uvloop_where_it_is_installed(ray):
    """As Ray's do; tray[default] installs it."""
    pytest.importorskip("uvloop")
    a = LoopKind.remote()
    assert ray.get(a.kind.remote()) == "uvloop"
    ray.kill(a)


@tray.remote
class Interrupted:
    async def interrupt(self):
        raise KeyboardInterrupt

    async def ok(self):
        return 1


def test_an_async_actor_whose_loop_stops_dies_rather_than_hangs(ray):
    """A KeyboardInterrupt out of an async method stops the actor's asyncio loop (in Ray too,
    whose later calls then wait for ever): here the actor exits and its callers hear why."""
    a = Interrupted.remote()
    assert ray.get(a.ok.remote()) == 1
    with pytest.raises((RayActorError, RayTaskError)):
        ray.get(a.interrupt.remote(), timeout=60)
    with pytest.raises(ActorDiedError, match="asyncio loop stopped"):
        ray.get(a.ok.remote(), timeout=60)


@tray.remote
class TrioNative:
    async def nap(self, seconds):
        start = trio.current_time()
        await trio.sleep(seconds)
        return trio.current_time() - start

    async def asyncio_nap(self, seconds):
        await asyncio.sleep(seconds)
        return "asyncio"

    async def fail(self):
        await trio.sleep(0)
        raise LookupError("trio side")


def test_trio_native_methods_run_beside_asyncio_ones(ray):
    import trio  # noqa: F401  (the actor's methods name it)

    a = TrioNative.options(max_concurrency=8).remote()
    ray.get(a.nap.remote(0))
    start = time.monotonic()
    naps = ray.get([a.nap.remote(0.5) for _ in range(4)] + [a.asyncio_nap.remote(0.5)])
    assert time.monotonic() - start < 1.5  # concurrent, on trio (guest mode) and asyncio together
    assert all(n >= 0.5 for n in naps[:4]) and naps[4] == "asyncio"
    with pytest.raises(LookupError, match="trio side"):
        ray.get(a.fail.remote())
    ray.kill(a)
