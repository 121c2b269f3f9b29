"""Lifecycle: monitors, links, kill, stop timeouts, concurrency, respawn, shutdown order."""

import pytest
import trio

import tray
from tray.exceptions import ActorDiedError


class Worker(tray.Actor):
    def __init__(self, log=None, tag=None):
        self.log, self.tag = log, tag

    def ping(self):
        return "pong"

    def fail(self):
        raise RuntimeError("worker failed")

    async def sleep(self, s):
        await trio.sleep(s)
        return s

    def on_stop(self):
        if self.log is not None:
            self.log.append(("stop", self.tag))


class Watcher(tray.Actor):
    def __init__(self, log):
        self.log = log

    def watch(self, ref):
        self.monitor(ref)

    def unwatch(self, ref):
        self.demonitor(ref)

    def on_down(self, ref, reason):
        self.log.append((ref, reason))


def crash_on_error(exc):
    return "stop"


def test_monitor_reports_each_exit_reason(run):
    log = []

    async def main():
        async with tray.ActorSystem() as system:
            w = await system.spawn(Watcher, log)
            a = await system.spawn(Worker)
            b = await system.spawn(Worker)
            c = await system.spawn(Worker, decider=crash_on_error)
            d = await system.spawn(Worker)
            for ref in (a, b, c, d):
                await w.watch.ask(ref)
            await w.unwatch.ask(d)
            await system.stop(a)
            await system.kill(b)
            with pytest.raises(RuntimeError, match="worker failed"):
                await c.fail.ask()  # the asker gets the error; the decider crashes the actor
            await system.stop(d)
            await w.watch.ask(a)  # already dead: noproc
            await trio.testing.wait_all_tasks_blocked()
        assert [(r, str(why)) for r, why in log] == [(a, "normal"), (b, "killed"), (c, "worker failed"), (a, "noproc")]
        assert isinstance(log[2][1], RuntimeError)

    run(main)


def test_links_propagate_abnormal_exits_and_trap_exits_turns_them_into_calls(run):
    log = []

    class Partner(Worker):
        def join(self, ref):
            self.link(ref)

    class Trapper(Worker):
        trap_exits = True

        def join(self, ref):
            self.link(ref)

        def on_exit(self, ref, reason):
            log.append(("exit", ref, str(reason)))

    async def main():
        async with tray.ActorSystem() as system:
            a = await system.spawn(Worker, decider=crash_on_error)
            b = await system.spawn(Partner, log, "b")
            t = await system.spawn(Trapper)
            await b.join.ask(a)
            await t.join.ask(a)
            with pytest.raises(RuntimeError):
                await a.fail.ask()
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(ActorDiedError):
                await b.ping.ask()  # took a down with it (its on_stop still ran)
            assert await t.ping.ask() == "pong"  # trapped instead
            # a normal exit does not take linked actors down
            c = await system.spawn(Worker)
            d = await system.spawn(Partner)
            await d.join.ask(c)
            await system.stop(c)
            assert await d.ping.ask() == "pong"
        assert ("stop", "b") in log
        assert ("exit", a, "worker failed") in log

    run(main)


def test_kill_skips_on_stop_and_fails_the_call_in_hand(run):
    log = []

    async def main():
        async with tray.ActorSystem() as system:
            w = await system.spawn(Worker, log, "w")
            async with trio.open_nursery() as n:
                result = []

                async def asker():
                    with pytest.raises(ActorDiedError, match="while handling"):
                        await w.sleep.ask(100)
                    result.append("failed")

                n.start_soon(asker)
                await trio.testing.wait_all_tasks_blocked()
                await system.kill(w)
            assert result == ["failed"]
        assert log == []

    run(main)


def test_stop_timeout_kills_an_actor_whose_on_stop_hangs(run):
    class Stubborn(tray.Actor):
        async def on_stop(self):
            await trio.sleep_forever()

        def ping(self):
            return "pong"

    async def main():
        async with tray.ActorSystem() as system:
            s = await system.spawn(Stubborn)
            await system.stop(s, timeout=3)
            assert trio.current_time() == pytest.approx(3)
            with pytest.raises(ActorDiedError, match="killed"):
                await s.ping.ask()

    run(main)


def test_max_concurrency(run):
    async def main():
        async with tray.ActorSystem() as system:
            one = await system.spawn(Worker)
            many = await system.spawn(Worker, max_concurrency=4)
            for ref, expected in ((one, 4.0), (many, 1.0)):
                start = trio.current_time()
                async with trio.open_nursery() as n:
                    for _ in range(4):
                        n.start_soon(ref.sleep.ask, 1)
                assert trio.current_time() - start == pytest.approx(expected)
            # with 8 calls and 4 slots: two rounds
            start = trio.current_time()
            async with trio.open_nursery() as n:
                for _ in range(8):
                    n.start_soon(many.sleep.ask, 1)
            assert trio.current_time() - start == pytest.approx(2)

    run(main)


def test_respawn_runs_on_restart_and_keeps_the_name(run):
    events = []

    class Phoenix(tray.Actor):
        def __init__(self, n):
            self.n = n

        def on_start(self):
            events.append("start")

        def on_restart(self, exc):
            events.append(("restart", str(exc)))

        def fail(self):
            raise ValueError("burnt")

        def get(self):
            return self.n

    async def main():
        async with tray.ActorSystem() as system:
            p = await system.spawn(Phoenix, 7, name="phoenix", decider=crash_on_error)
            with pytest.raises(RuntimeError, match="alive"):
                await system.respawn(p, ValueError("no"))
            with pytest.raises(ValueError):
                await p.fail.ask()
            await trio.testing.wait_all_tasks_blocked()
            assert system.lookup("phoenix") is None
            p2 = await system.respawn(p, ValueError("burnt"))
            assert p2 != p and system.lookup("phoenix") == p2
            assert await p2.get.ask() == 7

    run(main)
    assert events == ["start", ("restart", "burnt")]


def test_shutdown_stops_children_before_parents_in_reverse_order(run):
    log = []

    class Parent(Worker):
        async def start_child(self, tag):
            return await self.system.spawn(Worker, log, tag, link=self.ref)

    async def main():
        async with tray.ActorSystem() as system:
            p1 = await system.spawn(Parent, log, "p1")
            await system.spawn(Worker, log, "solo")
            await p1.start_child.ask("c1")
            await p1.start_child.ask("c2")

    run(main)
    # no supervisor here, so the system stops children itself when their parent goes:
    # roots in reverse spawn order, and a stopping parent's links take its children
    assert log[0] == ("stop", "solo")
    assert set(log[1:]) == {("stop", "p1"), ("stop", "c1"), ("stop", "c2")}


def test_actor_stops_itself(run):
    class Quitter(Worker):
        async def quit(self):
            await self.stop()
            return "bye"

    async def main():
        async with tray.ActorSystem() as system:
            q = await system.spawn(Quitter)
            assert await q.quit.ask() == "bye"
            await trio.testing.wait_all_tasks_blocked()
            assert system.actors() == []

    run(main)


def test_stop_cancels_running_concurrent_handlers_and_fails_their_askers(run):
    async def main():
        async with tray.ActorSystem() as system:
            w = await system.spawn(Worker, max_concurrency=3)
            failures = []

            async def asker():
                try:
                    await w.sleep.ask(1000)
                except ActorDiedError as e:
                    failures.append(e)

            async with trio.open_nursery() as n:
                for _ in range(3):
                    n.start_soon(asker)
                await trio.testing.wait_all_tasks_blocked()
                await system.stop(w)
            assert len(failures) == 3 and trio.current_time() == 0

    run(main)


def test_background_tasks_live_and_die_with_the_actor(run):
    ticks = []

    class Ticker(tray.Actor):
        def on_start(self):
            self.start_soon(self.tick, 1.0)

        async def tick(self, every):
            while True:
                await trio.sleep(every)
                ticks.append(trio.current_time())
                if len(ticks) == 5:
                    raise RuntimeError("tick failed")

        def ping(self):
            return "pong"

    async def main():
        async with tray.ActorSystem() as system:
            t = await system.spawn(Ticker)
            await trio.sleep(2.5)
            assert await t.ping.ask() == "pong" and ticks == [1.0, 2.0]
            await system.stop(t)
            await trio.sleep(10)
            assert len(ticks) == 2  # cancelled with the actor
            t2 = await system.spawn(Ticker)
            await trio.sleep(10)
            with pytest.raises(ActorDiedError, match="tick failed"):
                await t2.ping.ask()  # a failing background task crashes its actor

    run(main)
