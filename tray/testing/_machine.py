"""Hypothesis ``RuleBasedStateMachine`` support for protocol tests of actors.

Subclass :class:`ClusterMachine`, start your actors in ``setup`` (an async method run
once per example, with the network delivering normally), and write rules that call
``self.call(afn)``; the network then holds every message, and the built-in rules
deliver, drop, duplicate or reorder them, partition and heal nodes, crash one, or let
time pass. The cluster runs in one ``trio.run`` (in a helper thread) under a
``MockClock`` that only moves inside a rule, so each example is deterministic.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ..transport import NetConfig
from ._sim import Cluster, _seed_scheduler

__all__ = ["ClusterMachine", "SimRunner"]


class SimRunner:
    """Runs a :class:`Cluster` in a trio run on a helper thread; ``call`` runs an async
    function in it and returns its result (the clock advances only during calls)."""

    def __init__(self, nodes: list[str], seed: int = 0, net: NetConfig | None = None) -> None:
        self.clock = trio.testing.MockClock(autojump_threshold=math.inf)
        self.cluster: Cluster = None  # type: ignore[assignment]
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready: queue.Queue[BaseException | None] = queue.Queue()
        self._stop: trio.Event | None = None
        self._nodes, self._seed, self._net = nodes, seed, net
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, daemon=True, name="tray-sim")
        self.thread.start()
        err = self._ready.get()
        if err is not None:
            raise err

    def _thread(self) -> None:
        _seed_scheduler(self._seed)
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # noqa: BLE001 - reported by call()/close()
            self._error = exc
            self._ready.put(exc)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with Cluster(seed=self._seed, net=self._net) as cluster:
            self.cluster = cluster
            for name in self._nodes:
                await cluster.add_node(name)
            self._ready.put(None)
            await self._stop.wait()

    async def _exec(self, afn: Callable[..., Awaitable[Any]], args: tuple) -> Any:
        self.clock.autojump_threshold = 0
        try:
            return await afn(*args)
        finally:
            self.clock.autojump_threshold = math.inf
            await trio.testing.wait_all_tasks_blocked()

    def call(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``await afn(*args)`` in the cluster's trio run, then let it settle."""
        if self._error is not None:
            raise RuntimeError("the simulated cluster has died") from self._error
        return trio.from_thread.run(self._exec, afn, args, trio_token=self._token)

    def close(self) -> None:
        if self._token is not None and self.thread.is_alive():
            def stop() -> None:
                self.clock.autojump_threshold = 0  # shutting down takes (virtual) time
                self._stop.set()  # type: ignore[union-attr]

            try:
                trio.from_thread.run_sync(stop, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self.thread.join(30)
        if self._error is not None:
            raise self._error


class ClusterMachine(RuleBasedStateMachine):
    """Base class of protocol state machines over a simulated cluster.

    Class attributes: ``nodes`` (names), ``net`` (a :class:`~tray.transport.NetConfig`;
    heartbeats are effectively off by default, so held messages do not kill peers).
    Override ``async def setup(self)``; use ``self.cluster``, ``self.network``,
    ``self.call``. Built-in rules: ``deliver``, ``drop``, ``duplicate``, ``partition``,
    ``heal``, ``advance_time`` (and ``crash`` when ``allow_crash`` is true).
    """

    nodes: tuple[str, ...] = ("a", "b", "c")
    net: NetConfig = NetConfig(heartbeat_interval=1e6)
    allow_crash = False

    def __init__(self) -> None:
        super().__init__()
        self.runner = SimRunner(list(self.nodes), net=self.net)
        self.cluster = self.runner.cluster
        self.network = self.cluster.network
        self.call(self.setup)
        self.network.hold = True

    async def setup(self) -> None:
        """Start the actors under test (messages flow normally while this runs)."""

    def call(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return self.runner.call(afn, *args)

    def teardown(self) -> None:
        try:
            self.call(self.finish)
        finally:
            self.runner.close()

    async def finish(self) -> None:
        """Runs last in each example (the network delivering normally again): check
        eventual properties here."""

    async def quiesce(self) -> None:
        """Heal partitions, stop holding, deliver everything held, and let it all run."""
        self.network.heal()
        self.network.hold = False
        self.network.deliver_all()
        await self.cluster.settle()

    # ---------------------------------------------------------------- rules

    def _has_held(self) -> bool:
        return bool(self.network.in_flight)

    @precondition(_has_held)
    @rule(i=st.integers(0, 1_000))
    def deliver(self, i: int) -> None:
        """Deliver one held message, not necessarily the oldest (reordering)."""
        net = self.network
        self.call(_apply, net.deliver, i % len(net.in_flight))

    @precondition(_has_held)
    @rule(i=st.integers(0, 1_000))
    def drop(self, i: int) -> None:
        net = self.network
        self.call(_apply, net.drop, i % len(net.in_flight))

    @precondition(_has_held)
    @rule(i=st.integers(0, 1_000))
    def duplicate(self, i: int) -> None:
        net = self.network
        self.call(_apply, net.duplicate, i % len(net.in_flight))

    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        a, b = data.draw(st.permutations(self.nodes))[:2]
        self.call(_apply, self.network.partition, a, b)

    @rule()
    def heal(self) -> None:
        self.call(_apply, self.network.heal)

    @rule(dt=st.floats(0.0, 1.0))
    def advance_time(self, dt: float) -> None:
        self.call(trio.sleep, dt)

    @precondition(lambda self: self.allow_crash and len(self.cluster.nodes) > 1)
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.cluster.nodes)))
        self.call(self.cluster.crash, name)


async def _apply(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


_ = invariant  # re-exported for users writing machines
