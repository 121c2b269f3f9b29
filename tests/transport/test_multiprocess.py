"""Real worker processes: the same refs work across processes, and their death is seen."""

from __future__ import annotations

import os

import cloudpickle
import numpy as np
import pytest
import trio
from remote_actors import Counter, Watcher
from worker_procs import TOKEN, Workers

import tray
from tray.exceptions import ActorDiedError
from tray.transport import NetConfig


class Local(tray.Actor):
    """Defined only in the test process: travels to the worker by value."""

    def __init__(self, base: int) -> None:
        self.base = base

    def add(self, x: int) -> tuple[int, int]:
        return self.base + x, os.getpid()


def test_worker_over_unix_and_tcp(workers: Workers) -> None:
    _, unix_addr = workers.start()
    _, tcp_addr = workers.start("tcp://127.0.0.1:0")

    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a:
            for addr in (unix_addr, tcp_addr):
                ref = await a.spawn(Counter, 1, at=addr, name="c")
                assert await ref.pid.ask() != os.getpid()
                for i in range(500):
                    ref.record.tell_nowait(i)
                assert await ref.records.ask() == list(range(500))
                assert (await ref.echo.ask(np.arange(10_000)) == np.arange(10_000)).all()
                big = np.arange(2_000_000)  # 16 MB: over the data connection, both ways
                assert (await ref.echo.ask(big) == big).all()
                assert await a.lookup_remote(addr, "c") == ref
            # refs held by one worker reach the other worker directly
            u = await a.lookup_remote(unix_addr, "c")
            t = await a.lookup_remote(tcp_addr, "c")
            assert await u.echo.ask(t) == t

    trio.run(main)


def test_classes_unknown_to_the_worker_travel_by_value(workers: Workers) -> None:
    _, addr = workers.start()
    cloudpickle.register_pickle_by_value(__import__(__name__))

    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a:
            ref = await a.spawn(Local, 40, at=addr)
            value, pid = await ref.add.ask(2)
            assert value == 42 and pid != os.getpid()

    try:
        trio.run(main)
    finally:
        cloudpickle.unregister_pickle_by_value(__import__(__name__))


def test_worker_death_fails_pending_asks_and_downs_monitors(workers: Workers) -> None:
    proc, addr = workers.start()

    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN, net=NetConfig(heartbeat_interval=0.1)) as a:
            ref = await a.spawn(Counter, at=addr)
            victim = await a.spawn(Counter, at=addr)
            w = await a.spawn(Watcher)
            await w.watch.ask(ref)
            async with trio.open_nursery() as n:
                failed = trio.Event()

                async def pending() -> None:
                    with pytest.raises(ActorDiedError):
                        await ref.sleep.ask(60)
                    failed.set()

                n.start_soon(pending)
                await trio.sleep(0.05)
                victim.die.tell_nowait()  # the worker process exits abruptly (os._exit)
                with trio.fail_after(5):
                    await failed.wait()
            with trio.fail_after(5):
                while not (await w.seen.ask())[0]:
                    await trio.sleep(0.01)
            assert (await w.seen.ask())[0] == [(ref, "noconnection")]
            with pytest.raises(ActorDiedError):
                await ref.incr.ask()
            # nothing reconnects silently: a new connection needs an explicit act
            with pytest.raises(ActorDiedError):
                await a.lookup_remote(addr, "c")

    trio.run(main)
    assert proc.wait(5) == 3


def test_worker_exits_when_its_parent_lets_go(workers: Workers) -> None:
    proc, _ = workers.start()
    proc.stdin.close()  # type: ignore[union-attr]
    assert proc.wait(10) == 0
