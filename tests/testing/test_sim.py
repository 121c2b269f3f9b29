"""The deterministic test system: in-memory network faults, MockClock, seeds that replay."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
import trio

import tray
import tray.testing as tt
from tray.exceptions import ActorDiedError
from tray.transport import FaultPlan, NetConfig


class Log(tray.Actor):
    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, x: Any) -> None:
        self.items.append(x)

    def get(self) -> list[Any]:
        return self.items

    def incr(self) -> int:
        self.items.append(1)
        return len(self.items)


class Watcher(tray.Actor):
    def __init__(self) -> None:
        self.downs: list[Any] = []

    def watch(self, ref: tray.ActorRef) -> None:
        self.monitor(ref)

    def on_down(self, ref: tray.ActorRef, reason: Any) -> None:
        self.downs.append((ref, reason, trio.current_time()))

    def seen(self) -> list[Any]:
        return self.downs


def test_nodes_talk_over_the_memory_network_in_virtual_time() -> None:
    async def main() -> None:
        async with tt.Cluster(seed=1) as c:
            a = await c.add_node("a")
            await c.add_node("b")
            ref = await a.spawn(Log, at=c.address("b"))
            for i in range(100):
                ref.add.tell_nowait(i)
            assert await ref.get.ask() == list(range(100))
            await trio.sleep(3600)  # an hour of heartbeats, instantly
            assert await ref.get.ask() == list(range(100))
            assert trio.current_time() == pytest.approx(3600)

    tt.run(main, seed=5)


def test_partition_is_detected_by_missed_heartbeats() -> None:
    async def main() -> None:
        net = NetConfig(heartbeat_interval=0.5, heartbeat_timeout=2.0)
        async with tt.Cluster(seed=2, net=net) as c:
            a = await c.add_node("a")
            await c.add_node("b")
            ref = await a.spawn(Log, at=c.address("b"))
            w = await a.spawn(Watcher)
            await w.watch.ask(ref)
            c.network.partition("a", "b")
            t0 = trio.current_time()
            with pytest.raises(ActorDiedError, match="no heartbeat"):
                await ref.get.ask()
            assert 2.0 <= trio.current_time() - t0 <= 3.0  # detected within a heartbeat of the timeout
            (down_ref, reason, _), = await w.seen.ask()
            assert down_ref == ref and reason == "noconnection"
            c.network.heal()
            with pytest.raises(ActorDiedError):  # no silent reconnect behind the monitor's back
                await ref.get.ask()
            again = await a.lookup_remote(c.address("b"), "nobody")  # explicit: a new connection
            assert again is None

    tt.run(main, seed=1)


def test_crash_of_a_node_downs_its_actors_at_once() -> None:
    async def main() -> None:
        async with tt.Cluster(seed=3) as c:
            a = await c.add_node("a")
            await c.add_node("b")
            ref = await a.spawn(Log, at=c.address("b"))
            w = await a.spawn(Watcher)
            await w.watch.ask(ref)
            await c.crash("b")
            await c.settle()
            assert [(r, why) for r, why, _ in await w.seen.ask()] == [(ref, "noconnection")]
            assert trio.current_time() == 0  # a closed stream is seen at once, not after a timeout

    tt.run(main)


def test_drops_duplicates_and_reordering_are_seeded_and_replay_exactly() -> None:
    async def scenario(seed: int) -> list[Any]:
        faults = FaultPlan(drop=0.2, duplicate=0.2, reorder=0.3, delay=(0.0, 0.05))
        async with tt.Cluster(seed=seed, faults=faults, net=NetConfig(heartbeat_interval=1e6)) as c:
            a = await c.add_node("a")
            b = await c.add_node("b")
            log = await b.spawn(Log, name="log")
            # a tells b across the faulty network; reads happen locally on b
            c.network.faults = FaultPlan()  # a clean lookup first
            ref = await a.lookup_remote(c.address("b"), "log")
            c.network.faults = faults
            for i in range(60):
                ref.add.tell_nowait(i)
            await trio.sleep(1)
            return await log.get.ask()

    first = tt.run(scenario, 7, seed=7)
    assert tt.run(scenario, 7, seed=7) == first  # replays exactly
    assert first != list(range(60))  # faults happened
    assert set(first) <= set(range(60))
    assert len(first) != len(set(first)) or len(first) < 60


def test_hold_mode_lets_a_test_deliver_drop_and_reorder_one_message_at_a_time() -> None:
    async def main() -> None:
        async with tt.Cluster(seed=4, net=NetConfig(heartbeat_interval=1e6)) as c:
            a = await c.add_node("a")
            b = await c.add_node("b")
            log = await b.spawn(Log, name="log")
            ref = await a.lookup_remote(c.address("b"), "log")
            c.network.hold = True
            for i in range(3):
                ref.add.tell_nowait(i)
            await c.settle()
            assert len(c.network.in_flight) == 3
            c.network.deliver(2)
            c.network.drop(0)
            c.network.duplicate(0)
            c.network.deliver_all()
            await c.settle()
            assert await log.get.ask() == [2, 1, 1]

    tt.run(main)


def test_a_failing_test_prints_its_seed(tmp_path: Any) -> None:
    script = tmp_path / "failing.py"
    script.write_text(
        textwrap.dedent(
            """
            import trio, tray.testing as tt
            async def main():
                await trio.sleep(1)
                raise AssertionError("boom")
            tt.run(main, seed=1234)
            """
        )
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "seed 1234" in r.stderr and "TRAY_TEST_SEED=1234" in r.stderr


def test_seed_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tt.SEED_ENV, "99")
    seen: list[int] = []

    async def main() -> None:
        from trio._core import _run

        seen.append(_run._r.getstate()[1][0])

    tt.run(main)
    tt.run(main, seed=99)
    assert seen[0] == seen[1]
