"""A deterministic cluster: several ActorSystems ("nodes") in one ``trio.run``.

Nodes talk over a :class:`~tray.transport.MemoryNetwork`; time is a ``MockClock`` that
jumps ahead whenever every task waits; trio's scheduler and every fault come from one
seed. Run a test with :func:`run` and a failure prints the seed that replays it.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import trio
import trio.testing

from .. import _config
from ..actors import ActorSystem
from ..transport import FaultPlan, MemoryNetwork, NetConfig

__all__ = ["Cluster", "deterministic", "run", "SEED_ENV"]

SEED_ENV = _config.env_name("test_seed")
T = TypeVar("T")


def _seed_scheduler(seed: int) -> None:
    """Make trio's task ordering a function of ``seed`` (trio's own hook for Hypothesis)."""
    from trio._core import _run

    _run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    _run._r.seed(seed)


def run(afn: Callable[..., Awaitable[T]], *args: Any, seed: int | None = None) -> T:
    """Run ``afn(*args)`` deterministically: seeded scheduling, ``MockClock`` with autojump.

    ``seed`` defaults to ``$TRAY_TEST_SEED`` or a fresh random one; if ``afn`` raises,
    the seed is printed (and noted on the exception) so the failure replays exactly.
    A keyword-only ``seed`` parameter of ``afn`` receives it.
    """
    if seed is None:
        seed = _config.get("test_seed")
        if seed is None:
            seed = random.randrange(2**32)
    _seed_scheduler(seed)
    clock = trio.testing.MockClock(autojump_threshold=0)
    try:
        return trio.run(functools.partial(afn, *args), clock=clock)
    except BaseException as exc:
        note = f"tray.testing: failed with seed {seed}; replay with {SEED_ENV}={seed}"
        print(note, file=sys.stderr)
        exc.add_note(note)
        raise


def deterministic(fn: Callable[..., Awaitable[Any]] | None = None, *, seed: int | None = None) -> Any:
    """Decorator: turn ``async def test_x(...)`` into a sync test run by :func:`run`."""

    def wrap(f: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(f)
        def test(*args: Any, **kwargs: Any) -> Any:
            return run(functools.partial(f, *args, **kwargs), seed=seed)

        return test

    return wrap(fn) if fn is not None else wrap


class Cluster:
    """Nodes on one simulated network: ``async with Cluster(seed=1) as c: a = await c.add_node("a")``.

    Every node is an :class:`~tray.actors.ActorSystem` listening on ``mem://<name>``;
    ``network`` injects faults (:meth:`~tray.transport.MemoryNetwork.partition`,
    ``crash``, ``hold``/``deliver``/``drop``...).
    """

    def __init__(
        self,
        seed: int = 0,
        faults: FaultPlan | None = None,
        hold: bool = False,
        net: NetConfig | None = None,
        token: str = "tray-testing",
    ) -> None:
        self.network = MemoryNetwork(seed=seed, faults=faults, hold=hold)
        self.net = net or NetConfig()
        self.token = token
        self.nodes: dict[str, ActorSystem] = {}
        self._stack = AsyncExitStack()
        self._hosts: dict[str, tuple[trio.Event, trio.Event]] = {}
        self._nursery: trio.Nursery = None  # type: ignore[assignment]

    async def __aenter__(self) -> Cluster:
        await self._stack.__aenter__()
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        self.network.nursery = self._nursery
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        self.network.hold = False
        self.network.deliver_all()
        self.network.heal()
        with trio.CancelScope(shield=True):
            for name in reversed(list(self.nodes)):
                await self.stop_node(name)
        self._nursery.cancel_scope.cancel()
        return await self._stack.__aexit__(*exc)

    async def add_node(self, name: str) -> ActorSystem:
        """Start a node named ``name`` (its address is ``mem://<name>``)."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        system = ActorSystem(
            address=f"mem://{name}", token=self.token, transport=self.network.transport(name), net=self.net
        )
        stop, done = trio.Event(), trio.Event()

        async def host(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                async with system:
                    task_status.started()
                    await stop.wait()
            finally:
                done.set()

        await self._nursery.start(host)
        self.nodes[name] = system
        self._hosts[name] = (stop, done)
        return system

    def address(self, name: str) -> str:
        return f"mem://{name}"

    async def crash(self, name: str) -> None:
        """Kill node ``name`` abruptly: its connections break, its actors die unannounced."""
        system = self.nodes[name]
        self.network.crash(name)
        for ref in reversed(system.actors()):
            ref._cell.kill()
        await self.stop_node(name)

    async def stop_node(self, name: str) -> None:
        """Shut node ``name`` down in order (its actors stop, its peers hear goodbye)."""
        self.nodes.pop(name)
        stop, done = self._hosts.pop(name)
        stop.set()
        await done.wait()

    async def settle(self) -> None:
        """Let every task run until all wait, without advancing the clock."""
        await trio.testing.wait_all_tasks_blocked()
