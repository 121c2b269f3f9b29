"""The Supervisor actor under a MockClock: restarts, deciders, escalation, shutdown, backoff, API."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import tray
from tray.exceptions import ActorDiedError
from tray.supervisors import Backoff, ChildSpec, RestartIntensityExceeded, Supervisor, SupervisorSpec


class Boom(Exception):
    pass


class Worker(tray.Actor):
    """Logs (event, tag, time) to a shared list."""

    def __init__(self, tag: str, log: list, *extra: Any, stop_for: float = 0.0) -> None:
        self.tag, self.log, self.extra, self.stop_for = tag, log, extra, stop_for

    def on_start(self) -> None:
        self.log.append(("start", self.tag, trio.current_time()))

    def on_restart(self, exc: BaseException) -> None:
        self.log.append(("restart", self.tag, trio.current_time(), type(exc).__name__))

    async def on_stop(self) -> None:
        await trio.sleep(self.stop_for)
        self.log.append(("stop", self.tag, trio.current_time()))

    def ping(self) -> Any:
        return (self.tag, *self.extra)

    def fail(self, exc: BaseException | None = None) -> None:
        raise exc or Boom(self.tag)

    async def quit(self, reason: str = "normal") -> None:
        await self.stop(reason)


class BadRestart(Worker):
    def on_restart(self, exc: BaseException) -> None:
        raise RuntimeError("cannot come back")


class BadStart(Worker):
    def on_start(self) -> None:
        raise RuntimeError("cannot start")


class Watch(tray.Actor):
    def __init__(self, ref: tray.ActorRef, out: dict) -> None:
        self.target, self.out = ref, out

    def on_start(self) -> None:
        self.monitor(self.target)

    def on_down(self, ref: tray.ActorRef, reason: Any) -> None:
        self.out["reason"] = reason


def events(log: list, kind: str | None = None) -> list:
    return [(e[0], e[1]) for e in log if kind is None or e[0] == kind]


def worker(tag: str, log: list, **kw: Any) -> ChildSpec:
    stop_for = kw.pop("stop_for", 0.0)
    return ChildSpec(tag, Worker, args=(tag, log), kwargs={"stop_for": stop_for} if stop_for else {}, **kw)


async def crash(ref: tray.ActorRef, exc: BaseException | None = None) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the actor fails with whatever it is handed
        await ref.fail.ask(exc)
    await trio.testing.wait_all_tasks_blocked()


def test_crash_restarts_the_child_the_asker_gets_the_error_and_the_name_follows(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            sup = await system.spawn(Supervisor, SupervisorSpec("one_for_one", children=[worker("db", log, name="db")]))
            db = await sup.child.ask("db")
            assert system.lookup("db") == db
            with pytest.raises(Boom):
                await db.fail.ask()
            await trio.testing.wait_all_tasks_blocked()
            new = await sup.child.ask("db")
            assert new is not None and new != db
            assert system.lookup("db") == new and await system.lookup("db").ping.ask() == ("db",)
            assert await sup.which_children.ask() == [("db", new, "running")]
            assert log[-1][0] == "restart" and log[-1][3] == "Boom"  # on_restart got the crash reason
            with pytest.raises(ActorDiedError):
                await db.ping.ask()

    run(main)


def test_deciders_resume_stop_and_escalate(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            decider = {ValueError: "resume", KeyError: "stop", LookupError: "escalate"}
            spec = SupervisorSpec(
                "one_for_one",
                children=[worker("a", log), worker("b", log, decider=decider), worker("c", log, decider=decider)],
            )
            sup = await system.spawn(Supervisor, spec)
            out: dict = {}
            await system.spawn(Watch, sup, out)
            b = await sup.child.ask("b")
            await crash(b, ValueError("bad input"))  # resume: same incarnation keeps serving
            assert await sup.child.ask("b") == b and await b.ping.ask() == ("b",)
            await crash(b, KeyError("gone"))  # stop: not restarted although permanent
            assert (await sup.which_children.ask())[1] == ("b", None, "stopped")
            log.clear()
            await crash(await sup.child.ask("c"), IndexError("up"))  # escalate: the supervisor fails
            assert isinstance(out["reason"], IndexError)
            assert events(log) == [("stop", "c"), ("stop", "a")]

    run(main)


def test_intensity_exceeded_stops_children_in_reverse_and_escalates_to_the_parent(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            inner = SupervisorSpec("one_for_one", intensity=1, period=10, children=[worker("x", log), worker("y", log)])
            outer = SupervisorSpec("one_for_one", intensity=1, period=10, children=[ChildSpec("inner", inner)])
            top = await system.spawn(Supervisor, outer, name="top")
            out: dict = {}
            await system.spawn(Watch, top, out)
            sub = await top.child.ask("inner")
            await crash(await sub.child.ask("x"))
            await trio.sleep(5)
            log.clear()
            await crash(await sub.child.ask("x"))  # 2 restarts within 10 s > intensity 1
            # the inner supervisor stopped its children (y, last to start, first to stop) and
            # exited abnormally; the outer one restarted it, which started x and y afresh
            assert events(log) == [("stop", "x"), ("stop", "y"), ("start", "x"), ("start", "y")]
            sub2 = await top.child.ask("inner")
            assert sub2 != sub and [s for _, _, s in await sub2.which_children.ask()] == ["running", "running"]
            assert "reason" not in out
            # once more within the outer period: the outer supervisor gives up too
            await crash(await sub2.child.ask("x"))
            await crash(await sub2.child.ask("x"))
            assert isinstance(out["reason"], RestartIntensityExceeded)
            assert isinstance(out["reason"].last_reason, RestartIntensityExceeded)
            assert system.actors() == [system.actors()[0]]  # only the watcher is left

    run(main)


def test_restart_window_slides(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            sup = await system.spawn(Supervisor, SupervisorSpec("one_for_one", intensity=2, period=5.0,
                                                                children=[worker("a", log)]))
            for _ in range(10):  # one crash every 2.5 s: the window never holds more than 3
                await crash(await sup.child.ask("a"))
                await trio.sleep(2.5001)
            assert len(events(log, "restart")) == 10

    run(main)


@pytest.mark.parametrize(("shutdown", "took", "ran_on_stop"), [(1.0, 1.0, False), ("infinity", 10.0, True),
                                                                ("brutal_kill", 0.0, False)])
def test_shutdown_waits_then_kills(run, shutdown: Any, took: float, ran_on_stop: bool) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_one", children=[worker("slow", log, stop_for=10.0, shutdown=shutdown)])
            sup = await system.spawn(Supervisor, spec)
            t0 = trio.current_time()
            await sup.terminate_child.ask("slow")
            assert trio.current_time() - t0 == took
            assert (("stop", "slow") in events(log)) is ran_on_stop
            assert await sup.which_children.ask() == [("slow", None, "stopped")]
            assert await sup.restart_child.ask("slow") is not None
            await sup.terminate_child.ask("slow")
            await sup.delete_child.ask("slow")
            assert await sup.which_children.ask() == []

    run(main)


def test_backoff_delays_restarts_exactly_and_shows_restarting(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_one", intensity=100, children=[
                worker("a", log, backoff=Backoff(1.0, 4.0, reset_after=30.0)), worker("b", log)])
            sup = await system.spawn(Supervisor, spec)
            delays = []
            for _ in range(4):
                ref = await sup.child.ask("a")
                await crash(ref)
                t_crash = trio.current_time()
                assert (await sup.which_children.ask())[0] == ("a", None, "restarting")
                assert await sup.child.ask("a") is None
                assert await (await sup.child.ask("b")).ping.ask() == ("b",)  # the rest is served
                while await sup.child.ask("a") is None:
                    await trio.sleep(0.125)
                delays.append(log[-1][2] - t_crash)
            assert delays == [1.0, 2.0, 4.0, 4.0]
            await trio.sleep(30)  # up long enough: the next restart is a first one again
            await crash(await sup.child.ask("a"))
            t_crash = trio.current_time()
            while await sup.child.ask("a") is None:
                await trio.sleep(0.125)
            assert log[-1][2] - t_crash == 1.0
            # a supervisor stopped while a child waits does not restart it later
            await crash(await sup.child.ask("a"))
            n = len(events(log, "restart"))
            await system.stop(sup)
            await trio.sleep(100)
            assert len(events(log, "restart")) == n
            assert system.actors() == []

    run(main)


def test_one_for_all_with_backoff_restarts_the_group_after_the_delay(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_all", children=[worker("a", log),
                                                           worker("b", log, backoff=Backoff(2.0, 2.0))])
            sup = await system.spawn(Supervisor, spec)
            log.clear()
            await crash(await sup.child.ask("b"))
            assert [s for _, _, s in await sup.which_children.ask()] == ["restarting", "restarting"]
            await trio.sleep(2.0)
            await trio.testing.wait_all_tasks_blocked()
            assert [(e[0], e[1], e[2]) for e in log] == [("stop", "b", 0.0), ("stop", "a", 0.0),
                                                         ("restart", "a", 2.0), ("restart", "b", 2.0)]

    run(main)


def test_simple_one_for_one_dynamic_children(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("simple_one_for_one", intensity=5, children=[ChildSpec("w", Worker, args=("w", log))])
            sup = await system.spawn(Supervisor, spec)
            w1 = await sup.start_child.ask(1)
            w2 = await sup.start_child.ask(2)
            assert await w2.ping.ask() == ("w", 2)  # template args + start_child args
            assert [(i, s) for i, _, s in await sup.which_children.ask()] == [("w#1", "running"), ("w#2", "running")]
            await crash(w1)
            w1b = await sup.child.ask("w#1")
            assert w1b != w1 and await w1b.ping.ask() == ("w", 1)  # restarted with the same args
            await w2.quit.ask()
            await trio.testing.wait_all_tasks_blocked()
            assert [i for i, _, _ in await sup.which_children.ask()] == ["w#1", "w#2"]  # permanent: back
            await sup.terminate_child.ask("w#2")
            assert [i for i, _, _ in await sup.which_children.ask()] == ["w#1"]  # dynamic: forgotten
            assert (await sup.count_children.ask())["active"] == 1

    run(main)


def test_auto_shutdown_on_significant_children(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            for mode, quits, alive_after in [("any_significant", ["s1"], False),
                                             ("all_significant", ["s1"], True),
                                             ("all_significant", ["s1", "s2"], False)]:
                spec = SupervisorSpec("one_for_one", auto_shutdown=mode, children=[
                    worker("plain", log),
                    worker("s1", log, restart="transient", significant=True),
                    worker("s2", log, restart="temporary", significant=True),
                ])
                sup = await system.spawn(Supervisor, spec)
                out: dict = {}
                await system.spawn(Watch, sup, out)
                log.clear()
                for tag in quits:
                    await (await sup.child.ask(tag)).quit.ask()
                    await trio.testing.wait_all_tasks_blocked()
                assert ("reason" not in out) is alive_after, mode
                if not alive_after:
                    assert out["reason"] == "shutdown"
                    assert events(log)[-1] == ("stop", "plain")
                else:
                    await system.stop(sup)

    run(main)


def test_a_child_that_fails_to_start_fails_the_supervisor_start(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_one", children=[worker("a", log), worker("b", log),
                                                           ChildSpec("bad", BadStart, args=("bad", log))])
            with pytest.raises(RuntimeError, match="cannot start"):
                await system.spawn(Supervisor, spec)
            assert events(log) == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]
            assert system.actors() == []

    run(main)


def test_failed_restarts_count_toward_intensity(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_one", intensity=3, period=5,
                                  children=[ChildSpec("x", BadRestart, args=("x", log))])
            sup = await system.spawn(Supervisor, spec)
            out: dict = {}
            await system.spawn(Watch, sup, out)
            await crash(await sup.child.ask("x"))
            assert isinstance(out["reason"], RestartIntensityExceeded)

    run(main)


def test_per_child_limit_gives_up_on_that_child_only(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            spec = SupervisorSpec("one_for_one", intensity=10, children=[
                worker("a", log, intensity=1, period=60.0), worker("b", log)])
            sup = await system.spawn(Supervisor, spec)
            await crash(await sup.child.ask("a"))
            await crash(await sup.child.ask("a"))
            rows = await sup.which_children.ask()
            assert [(i, s) for i, _, s in rows] == [("a", "failed"), ("b", "running")]

    run(main)


def test_system_exit_stops_the_tree_children_first_in_reverse_order(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            inner = SupervisorSpec("one_for_all", children=[worker("i1", log), worker("i2", log)])
            spec = SupervisorSpec("rest_for_one", children=[worker("a", log), ChildSpec("sub", inner),
                                                            worker("z", log)])
            await system.spawn(Supervisor, spec)
            log.clear()

    run(main)
    assert events(log) == [("stop", "z"), ("stop", "i2"), ("stop", "i1"), ("stop", "a")]


def test_static_start_child_and_api_errors_keep_the_supervisor_serving(run) -> None:
    log: list = []

    async def main() -> None:
        async with tray.ActorSystem() as system:
            inner = SupervisorSpec("one_for_one", children=[worker("a", log)])
            top = await system.spawn(Supervisor, SupervisorSpec("one_for_one", children=[ChildSpec("sub", inner)]))
            sub = await top.child.ask("sub")
            with pytest.raises(KeyError):
                await sub.child.ask("nope")  # a supervisor child resumes after a bad request
            with pytest.raises(TypeError):
                await sub.start_child.ask("not a spec")
            assert await top.child.ask("sub") == sub
            b = await sub.start_child.ask(worker("b", log))
            assert [i for i, _, _ in await sub.which_children.ask()] == ["a", "b"]
            with pytest.raises(ValueError):
                await sub.start_child.ask(worker("b", log))  # duplicate id
            assert await sub.count_children.ask() == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
            assert await b.ping.ask() == ("b",)

    run(main)


def test_a_linked_non_child_failing_takes_the_supervisor_down(run) -> None:
    log: list = []

    class Buddy(tray.Actor):
        def link_to(self, ref: tray.ActorRef) -> None:
            self.link(ref)

        def fail(self) -> None:
            raise Boom("buddy")

    async def main() -> None:
        async with tray.ActorSystem() as system:
            sup = await system.spawn(Supervisor, SupervisorSpec("one_for_one", children=[worker("a", log)]))
            out: dict = {}
            await system.spawn(Watch, sup, out)
            buddy = await system.spawn(Buddy, decider=lambda e: "crash")
            await buddy.link_to.ask(sup)
            with pytest.raises(Boom):
                await buddy.fail.ask()
            await trio.testing.wait_all_tasks_blocked()
            assert isinstance(out["reason"], Boom) and ("stop", "a") in events(log)

    run(main)
