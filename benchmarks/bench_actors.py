"""In-process actor asks and tells, each beside a bare-trio baseline measured in the same run.

    python benchmarks/bench_actors.py [--rounds 7] [--n 50000]

Baselines: an ask against a request/reply over a bare ``trio.open_memory_channel`` with
a ``trio.Event`` for the reply; a tell (including its handling) against ``send_nowait``
into a bare memory channel drained by one task. Prints the median of each over the
rounds and the ratio tray / baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import trio

import tray


class Counter(tray.Actor):
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


async def baseline_ask(n: int) -> float:
    send, recv = trio.open_memory_channel[list](0)

    async def server() -> None:
        async for box in recv:
            box[1] = 1
            box[0].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        t = time.perf_counter()
        for _ in range(n):
            box = [trio.Event(), None]
            await send.send(box)
            await box[0].wait()
        dt = time.perf_counter() - t
        nursery.cancel_scope.cancel()
    return n / dt


async def baseline_tell(n: int) -> float:
    send, recv = trio.open_memory_channel[int](float("inf"))
    done = trio.Event()

    async def server() -> None:
        count = 0
        async for _ in recv:
            count += 1
            if count == n:
                done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        t = time.perf_counter()
        for i in range(n):
            send.send_nowait(i)
        await done.wait()
        dt = time.perf_counter() - t
        nursery.cancel_scope.cancel()
    return n / dt


async def tray_ask(n: int) -> float:
    async with tray.ActorSystem() as system:
        c = await system.spawn(Counter)
        t = time.perf_counter()
        for _ in range(n):
            await c.incr.ask()
        return n / (time.perf_counter() - t)


async def tray_tell(n: int) -> float:
    async with tray.ActorSystem() as system:
        c = await system.spawn(Counter)
        t = time.perf_counter()
        for _ in range(n):
            await c.incr.tell()
        assert await c.incr.ask() == n + 1  # every tell was handled
        return n / (time.perf_counter() - t)


PAIRS = [
    ("in-process asks/s (sequential)", tray_ask, baseline_ask),
    ("in-process tells/s (incl. handling)", tray_tell, baseline_tell),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=50_000, help="messages per round")
    parser.add_argument("--quick", action="store_true", help="a smoke run (tests use it)")
    args = parser.parse_args(argv)
    rounds, n = (1, 500) if args.quick else (args.rounds, args.n)
    print(f"{'benchmark':40} {'tray':>12} {'baseline':>12} {'ratio':>7}")
    for label, ours, base in PAIRS:
        tray_rates, base_rates = [], []
        for _ in range(rounds):  # alternate, so drift in machine load hits both alike
            base_rates.append(trio.run(base, n))
            tray_rates.append(trio.run(ours, n))
        t, b = statistics.median(tray_rates), statistics.median(base_rates)
        print(f"{label:40} {t:12,.0f} {b:12,.0f} {t / b:7.2f}")


if __name__ == "__main__":
    main()
