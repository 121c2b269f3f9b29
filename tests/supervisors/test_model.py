"""A hypothesis state machine against a small reference model of OTP supervisor semantics.

Random crash / normal-exit / shutdown-exit / kill sequences (plus clock jumps, dynamic
children and a final stop) are applied to a real :class:`Supervisor` with plain worker
children, one machine per strategy. After each step the model says which children
stopped and started, in what order, whether the restart intensity tripped, and what
``which_children`` shows; the actor system runs in a trio thread under a MockClock that
only the ``advance`` rule moves, so ``period`` is exact.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tray import Actor, ActorSystem
from tray.supervisors import ChildSpec, RestartIntensityExceeded, Supervisor, SupervisorSpec


class Boom(Exception):
    pass


class Kid(Actor):
    def __init__(self, cid: str, events: list[tuple[str, str]]) -> None:
        self.cid, self.events = cid, events

    def on_start(self) -> None:
        self.events.append(("start", self.cid))

    def on_stop(self) -> None:
        self.events.append(("stop", self.cid))

    def crash(self) -> None:
        raise Boom(self.cid)

    async def quit(self, reason: str) -> None:
        await self.stop(reason)


class DynKid(Kid):
    """A simple_one_for_one child: its id comes from the supervisor's start_child args."""


class Watch(Actor):
    """Records the supervisor's exit reason."""

    def __init__(self, ref: Any, out: dict[str, Any]) -> None:
        self.target, self.out = ref, out

    def on_start(self) -> None:
        self.monitor(self.target)

    def on_down(self, ref: Any, reason: Any) -> None:
        self.out["reason"] = reason


# ------------------------------------------------------------------ the reference model


class Model:
    """OTP supervisor semantics, written independently of tray.supervisors."""

    def __init__(self, strategy: str, intensity: int, period: float) -> None:
        self.strategy, self.intensity, self.period = strategy, intensity, period
        self.children: list[dict[str, Any]] = []  # {id, restart, up, inc}; in start order
        self.restarts: list[float] = []
        self.alive = True
        self.now = 0.0

    def add(self, cid: str, restart: str) -> list[tuple[str, str]]:
        self.children.append({"id": cid, "restart": restart, "up": True, "inc": 0})
        return [("start", cid)]

    def _get(self, cid: str) -> dict[str, Any]:
        return next(c for c in self.children if c["id"] == cid)

    def _remove(self, c: dict[str, Any]) -> None:
        self.children.remove(c)

    def exit(self, cid: str, how: str) -> list[tuple[str, str]]:
        """Child ``cid`` exits: "crash", "normal", "shutdown" or "killed". Returns expected events."""
        c = self._get(cid)
        events = [] if how == "killed" else [("stop", cid)]  # a killed actor runs no on_stop
        c["up"] = False
        abnormal = how in ("crash", "killed")
        dynamic = self.strategy == "simple_one_for_one"
        if not (c["restart"] == "permanent" or (c["restart"] == "transient" and abnormal)):
            if c["restart"] == "temporary" or dynamic:
                self._remove(c)
            return events
        self.restarts = [t for t in self.restarts if self.now - t <= self.period] + [self.now]
        if len(self.restarts) > self.intensity:
            events += [("stop", x["id"]) for x in reversed(self.children) if x["up"]]
            self.alive = False
            return events
        i = self.children.index(c)
        group = {"one_for_all": self.children[:], "rest_for_one": self.children[i:]}.get(self.strategy, [c])
        for x in reversed(group):
            if x is not c and x["up"]:
                events.append(("stop", x["id"]))
                x["up"] = False
                if x["restart"] == "temporary":
                    self._remove(x)
        for x in group:
            if x in self.children:
                events.append(("start", x["id"]))
                x["up"] = True
                x["inc"] += 1
        return events

    def stop_all(self) -> list[tuple[str, str]]:
        self.alive = False
        return [("stop", x["id"]) for x in reversed(self.children) if x["up"]]


# ------------------------------------------------------------------ a trio run in a thread


class TrioThread:
    """One trio run (with an ActorSystem) in a thread, driven step by step from hypothesis."""

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock()  # no autojump: only advance() moves time
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as e:  # noqa: BLE001 - surfaced by close()
            self.error = e
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._done = trio.Event()
        async with ActorSystem() as system:
            self.system = system
            self._ready.set()
            await self._done.wait()

    def call(self, afn: Any, *args: Any) -> Any:
        return trio.from_thread.run(afn, *args, trio_token=self.token)

    def close(self) -> None:
        trio.from_thread.run_sync(self._done.set, trio_token=self.token)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the trio thread did not finish"
        if self.error is not None:
            raise self.error


async def settle() -> None:
    """Let every actor run until all are blocked (exits delivered and handled)."""
    await trio.testing.wait_all_tasks_blocked()


# ------------------------------------------------------------------ the machine

RESTART = st.sampled_from(["permanent", "transient", "temporary"])


class SupervisorMachine(RuleBasedStateMachine):
    strategy = "one_for_one"

    def __init__(self) -> None:
        super().__init__()
        self.trio = TrioThread()
        self.events: list[tuple[str, str]] = []
        self.refs: dict[str, Any] = {}
        self.incs: dict[str, int] = {}
        self.watched: dict[str, Any] = {}
        self.dyn = 0

    def teardown(self) -> None:
        self.trio.close()

    @initialize(
        intensity=st.integers(0, 4),
        period=st.sampled_from([1.0, 2.5, 5.0]),
        restarts=st.lists(RESTART, min_size=1, max_size=5),
    )
    def start(self, intensity: int, period: float, restarts: list[str]) -> None:
        self.model = Model(self.strategy, intensity, period)
        if self.strategy == "simple_one_for_one":
            self.template_restart = restarts[0]
            children = [ChildSpec("kid", DynKid, args=(), restart=restarts[0])]
        else:
            children = [
                ChildSpec(f"c{i}", Kid, args=(f"c{i}", self.events), restart=r) for i, r in enumerate(restarts)
            ]
        spec = SupervisorSpec(self.strategy, intensity=intensity, period=period, children=children)

        async def go() -> None:
            self.sup = await self.trio.system.spawn(Supervisor, spec)
            await self.trio.system.spawn(Watch, self.sup, self.watched)
            await settle()

        self.trio.call(go)
        expected: list[tuple[str, str]] = []
        if self.strategy != "simple_one_for_one":
            for i, r in enumerate(restarts):
                expected += self.model.add(f"c{i}", r)
        self._check_events(expected)
        self._observe()

    # -------------------------------------------------------------- rules

    def _running(self) -> list[str]:
        return [c["id"] for c in self.model.children if c["up"]]

    @precondition(lambda self: self.model.alive and self.strategy == "simple_one_for_one")
    @rule()
    def start_child(self) -> None:
        self.dyn += 1
        tag = f"kid#{self.dyn}"

        async def go() -> None:
            await self.sup.start_child.ask(tag, self.events)
            await settle()

        self.trio.call(go)
        self._check_events(self.model.add(tag, self.template_restart))

    @precondition(lambda self: self.model.alive and any(c["up"] for c in self.model.children))
    @rule(data=st.data(), how=st.sampled_from(["crash", "normal", "shutdown", "killed"]))
    def child_exits(self, data: st.DataObject, how: str) -> None:
        cid = data.draw(st.sampled_from(self._running()), label="child")
        ref = self.refs[cid]

        async def go() -> None:
            if how == "crash":
                with pytest.raises(Boom):
                    await ref.crash.ask()
            elif how == "killed":
                await self.trio.system.kill(ref)
            else:
                await ref.quit.ask(how)
            await settle()

        self.trio.call(go)
        self._check_events(self.model.exit(cid, how))

    @rule(dt=st.sampled_from([0.5, 1.0, 2.5, 5.0, 0.25]))
    def advance(self, dt: float) -> None:
        self.trio.clock.jump(dt)
        self.model.now += dt

    @precondition(lambda self: self.model.alive)
    @rule()
    def advance_one_period(self) -> None:
        """Exactly ``period``: a restart that long ago still counts (OTP's window is inclusive)."""
        self.advance(self.model.period)

    @precondition(lambda self: self.model.alive)
    @rule()
    def stop_supervisor(self) -> None:
        async def go() -> None:
            await self.trio.system.stop(self.sup, "shutdown")
            await settle()

        self.trio.call(go)
        self._check_events(self.model.stop_all())
        assert self.watched["reason"] == "shutdown"

    # -------------------------------------------------------------- checks

    def _check_events(self, expected: list[tuple[str, str]]) -> None:
        got = self.events[:]
        self.events.clear()
        assert got == expected, f"events {got} != model {expected}"
        if self.model.alive:
            self._observe()
        elif "reason" in self.watched and self.watched["reason"] != "shutdown":
            assert isinstance(self.watched["reason"], RestartIntensityExceeded)

    def _observe(self) -> None:
        rows = self.trio.call(self.sup.which_children.ask)
        model = self.model.children
        assert [r[0] for r in rows] == [c["id"] for c in model]
        for (cid, ref, status), c in zip(rows, model, strict=True):
            assert status == ("running" if c["up"] else "stopped"), (cid, status, c)
            assert (ref is not None) == c["up"]
            if ref is not None:
                restarted = self.incs.get(cid, 0) != c["inc"]
                assert (ref != self.refs.get(cid)) == (restarted or cid not in self.refs), cid
                self.refs[cid], self.incs[cid] = ref, c["inc"]

    @invariant()
    def supervisor_alive_as_model_says(self) -> None:
        if not hasattr(self, "model"):
            return
        assert ("reason" not in self.watched) == self.model.alive, (self.watched, self.model.alive)
        assert self.trio.clock.current_time() == self.model.now


def _machine(strategy: str) -> Any:
    cls = type(f"{strategy}_machine", (SupervisorMachine,), {"strategy": strategy})
    cls.TestCase.settings = settings(
        max_examples=75, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
    )
    return cls.TestCase


TestOneForOne = _machine("one_for_one")
TestOneForAll = _machine("one_for_all")
TestRestForOne = _machine("rest_for_one")
TestSimpleOneForOne = _machine("simple_one_for_one")
