"""Actor classes used by the transport tests (importable by worker processes too)."""

from __future__ import annotations

import os
from typing import Any

import trio

import tray


class Counter(tray.Actor):
    def __init__(self, n: int = 0) -> None:
        self.n = n
        self.log: list[Any] = []

    def incr(self, k: int = 1) -> int:
        self.n += k
        return self.n

    def get(self) -> int:
        return self.n

    def record(self, x: Any) -> None:
        self.log.append(x)

    async def arecord(self, x: Any) -> None:
        await trio.sleep(0)
        self.log.append(x)

    def records(self) -> list[Any]:
        return self.log

    def boom(self) -> None:
        raise ValueError("boom")

    def pid(self) -> int:
        return os.getpid()

    def echo(self, x: Any) -> Any:
        return x

    def nbytes(self, x: Any) -> int:
        return len(memoryview(x).cast("B"))

    def unpicklable(self) -> Any:
        return lambda: trio  # cloudpickle can; a lock cannot

    def lock(self) -> Any:
        import threading

        return threading.Lock()

    async def sleep(self, s: float) -> str:
        await trio.sleep(s)
        return "slept"

    def die(self) -> None:
        os._exit(3)


class Forwarder(tray.Actor):
    """Asks the ref it is given: refs received in messages are usable directly."""

    async def call(self, ref: tray.ActorRef, k: int) -> int:
        return await ref.incr.ask(k)

    async def spawn_on(self, address: str) -> tray.ActorRef:
        return await self.system.spawn(Counter, 100, at=address)


class Watcher(tray.Actor):
    def __init__(self) -> None:
        self.downs: list[tuple[Any, Any]] = []
        self.exits: list[tuple[Any, Any]] = []

    trap_exits = True

    def watch(self, ref: tray.ActorRef) -> None:
        self.monitor(ref)

    def link_to(self, ref: tray.ActorRef) -> None:
        self.link(ref)

    def on_down(self, ref: tray.ActorRef, reason: Any) -> None:
        self.downs.append((ref, reason))

    def on_exit(self, ref: tray.ActorRef, reason: Any) -> None:
        self.exits.append((ref, reason))

    def seen(self) -> tuple[list, list]:
        return self.downs, self.exits
