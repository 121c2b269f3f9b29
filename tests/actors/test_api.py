"""The kernel's public contract, as the issue states it, plus its edge cases."""

import logging
import pickle

import pytest
import trio

import tray
from tray.exceptions import ActorDiedError, AskTimeoutError, NameTakenError, RayTaskError


class Counter(tray.Actor):
    def __init__(self, start=0):
        self.n = start
        self.me = self.ref
        self.stopped = []

    def incr(self, by=1):
        self.n += by
        return self.n

    async def slow(self, seconds):
        await trio.sleep(seconds)
        return seconds

    def fail(self, msg):
        raise ValueError(msg)

    def whoami(self):
        return self.me

    async def ask_self(self):
        return await self.ref.incr.ask()

    def _private(self):
        return "secret"


def test_issue_contract(run):
    stops = []

    class C(Counter):
        def on_stop(self):
            stops.append(self.n)

    async def main():
        async with tray.ActorSystem() as system:
            c = await system.spawn(C, 10, name="counter")
            assert isinstance(c, tray.ActorRef)
            assert await c.incr.ask(5) == 15
            await c.incr.tell(1)
            c.incr.tell_nowait(1)
            assert await c.incr.ask(0) == 17
            assert system.lookup("counter") == c
            await system.stop(c)
            assert stops == [17]
            assert system.lookup("counter") is None
            with pytest.raises(ActorDiedError, match="counter"):
                await c.incr.ask()

    run(main)


def test_handler_exception_reaches_asker_as_its_class_and_actor_survives(run):
    async def main():
        async with tray.ActorSystem() as system:
            c = await system.spawn(Counter)
            with pytest.raises(ValueError) as info:
                await c.fail.ask("boom")
            err = info.value
            assert isinstance(err, RayTaskError) and isinstance(err, ValueError)
            assert err.args == ("boom",)
            assert "Traceback" in str(err) and "in fail" in str(err) and "boom" in str(err)
            assert await c.incr.ask() == 1  # still serving

    run(main)


def test_task_error_pickles_with_its_class_and_traceback():
    err = RayTaskError.from_exception(KeyError("k"), "somewhere")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, KeyError) and isinstance(back, RayTaskError)
    assert back.traceback_str == err.traceback_str and back.where == "somewhere"


def test_rewrapping_keeps_the_users_class():
    inner = RayTaskError.from_exception(RuntimeError("x"), "a")
    outer = RayTaskError.from_exception(inner, "b")
    assert isinstance(outer, RuntimeError) and type(outer) is type(inner)


def test_told_exception_is_logged_not_lost(run, caplog):
    async def main():
        async with tray.ActorSystem() as system:
            c = await system.spawn(Counter)
            await c.fail.tell("quiet")
            assert await c.incr.ask() == 1

    with caplog.at_level(logging.WARNING, logger="tray.actors"):
        run(main)
    assert any("fail raised" in r.getMessage() for r in caplog.records)


def test_ask_timeout(run):
    async def main():
        async with tray.ActorSystem() as system:
            c = await system.spawn(Counter)
            with pytest.raises(AskTimeoutError) as info:
                await c.slow.ask(10, timeout=1)
            assert isinstance(info.value, TimeoutError)
            assert trio.current_time() == pytest.approx(1)
            assert await c.slow.ask(0, timeout=20) == 0  # after the slow one finished

    run(main)


def test_bad_input(run):
    async def main():
        async with tray.ActorSystem() as system:
            c = await system.spawn(Counter, name="c")
            with pytest.raises(AttributeError, match="'Counter' has no public method 'nope'"):
                _ = c.nope
            with pytest.raises(AttributeError, match="Counter"):
                _ = c._private
            with pytest.raises(AttributeError, match="Counter"):
                _ = c.on_start  # lifecycle hooks are not messages
            with pytest.raises(TypeError, match="subclass of tray.Actor"):
                await system.spawn(dict)
            with pytest.raises(TypeError, match="subclass of tray.Actor"):
                await system.spawn(tray.Actor())
            with pytest.raises(RuntimeError, match="constructed directly"):
                Counter(1)
            with pytest.raises(NameTakenError, match="'c' already exists"):
                await system.spawn(Counter, name="c")
            with pytest.raises(ValueError, match="max_concurrency"):
                await system.spawn(Counter, max_concurrency=0)
            with pytest.raises(RuntimeError, match="wait for itself"):
                await c.ask_self.ask()

    run(main)


def test_spawn_outside_running_system_is_an_error(run):
    async def main():
        system = tray.ActorSystem()
        with pytest.raises(RuntimeError, match="not running"):
            await system.spawn(Counter)

    run(main)


def test_failing_init_raises_at_spawn_and_frees_the_name(run):
    class Broken(tray.Actor):
        def __init__(self):
            raise OSError("no disk")

    class BrokenStart(tray.Actor):
        async def on_start(self):
            await trio.sleep(1)
            raise KeyError("late")

    async def main():
        async with tray.ActorSystem() as system:
            with pytest.raises(OSError, match="no disk"):
                await system.spawn(Broken, name="b")
            with pytest.raises(KeyError):
                await system.spawn(BrokenStart, name="b")
            assert system.lookup("b") is None
            assert system.actors() == []

    run(main)


def test_ref_identity_repr_and_pickle(run):
    async def main():
        async with tray.ActorSystem() as system:
            a = await system.spawn(Counter, name="a")
            b = await system.spawn(Counter)
            assert a != b and a == a and len({a, b, a}) == 2
            assert repr(a).startswith("ActorRef(Counter#") and repr(a).endswith(" 'a')")
            assert "'" not in repr(b)
            assert await a.whoami.ask() == a  # self.ref works already in __init__
            back = pickle.loads(pickle.dumps(a))
            assert back == a and hash(back) == hash(a)
            assert await back.incr.ask(2) == 2
        # once the system is gone, an unpickled ref is unreachable, not a hang
        orphan = pickle.loads(pickle.dumps(a))
        with pytest.raises(ActorDiedError):
            await orphan.incr.ask()

    run(main)


def test_async_on_start_and_hooks(run):
    events = []

    class Hooked(tray.Actor):
        async def on_start(self):
            await trio.sleep(0.5)
            events.append("start")

        async def on_stop(self):
            await trio.sleep(0.5)
            events.append("stop")

        def ping(self):
            events.append("ping")

    async def main():
        async with tray.ActorSystem() as system:
            h = await system.spawn(Hooked)
            assert events == ["start"]
            await h.ping.ask()
        assert events == ["start", "ping", "stop"]

    run(main)
