"""Bulk payloads go over the data connection, in order, without holding up small traffic."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import trio
from remote_actors import Counter

import tray
from tray.transport import NetConfig

TOKEN = "secret"


def _peer_of(system: tray.ActorSystem, ref: tray.ActorRef):  # type: ignore[no-untyped-def]
    return ref._cell.peer


def test_big_payloads_take_the_data_connection_and_keep_per_sender_order(sockdir: Path) -> None:
    async def main() -> None:
        cfg = NetConfig(bulk_threshold=256 * 1024, chunk=64 * 1024, credits=2)
        async with tray.ActorSystem(token=TOKEN, net=cfg) as a, tray.ActorSystem(
            address=f"unix://{sockdir}/b.sock", token=TOKEN, net=cfg
        ) as b:
            ref = await a.spawn(Counter, at=b.address)
            assert await ref.incr.ask() == 1
            peer = _peer_of(a, ref)
            with trio.fail_after(5):
                while peer.bulk is None:
                    await trio.sleep(0.001)
            big = np.random.default_rng(0).integers(0, 255, size=3_000_000, dtype=np.uint8)
            await ref.record.tell("first")
            await ref.record.tell(big)
            await ref.record.tell("after")
            log = await ref.records.ask()
            assert log[0] == "first" and log[2] == "after" and (log[1] == big).all()
            assert next(peer._bulk_ids) > 1  # it went as bulk
            # the reply direction uses it too
            back = await ref.echo.ask(big)
            assert (back == big).all()
            blob = bytes(range(256)) * 12_000  # bytes stay bytes (not a view of a receive buffer)
            again = await ref.echo.ask(blob)
            assert type(again) is bytes and again == blob

    trio.run(main)


def test_a_large_transfer_does_not_delay_small_asks(sockdir: Path) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            sink = await a.spawn(Counter, at=b.address)
            other = await a.spawn(Counter, at=b.address)
            await sink.incr.ask()
            with trio.fail_after(5):
                while _peer_of(a, sink).bulk is None:
                    await trio.sleep(0.001)
            blob = b"\x00" * (192 * 1024 * 1024)
            done: dict[str, float] = {}

            async def big() -> None:
                assert await sink.nbytes.ask(blob) == len(blob)
                done["big"] = time.perf_counter()

            async with trio.open_nursery() as n:
                n.start_soon(big)
                await trio.sleep(0.005)
                latencies = []
                for _ in range(20):
                    t = time.perf_counter()
                    await other.incr.ask()
                    latencies.append(time.perf_counter() - t)
                done["small"] = time.perf_counter()
            assert done["small"] < done["big"], "small asks waited for the bulk transfer"
            assert max(latencies) < 0.1

    trio.run(main)
