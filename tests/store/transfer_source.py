"""A node's store in a process of its own, for transfer tests and benchmarks.

    python transfer_source.py PREFIX NBYTES SPILL_DIR [--delay S]

Hosts an ActorSystem listening on TCP loopback (token: ``TRAY_CLUSTER_TOKEN``) with an
``ObjectStore`` named ``tray.store``, writes ``NBYTES`` of ``value(NBYTES)`` into it with
a ``StoreClient``, prints ``READY <address> <key> <size>`` and serves until stdin closes.
``--delay`` makes each chunk it serves wait that long (to kill it mid-transfer).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import trio

import tray
from tray.store import STORE_NAME, ObjectStore, StoreClient

KEY = "obj"


def value(nbytes: int) -> np.ndarray:
    return np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)


class SlowStore(ObjectStore):
    delay = 0.0

    async def read_chunk(self, key: str, offset: int, length: int) -> memoryview:
        await trio.sleep(self.delay)
        return await super().read_chunk(key, offset, length)


async def main(prefix: str, nbytes: int, spill_dir: str, delay: float) -> None:
    SlowStore.delay = delay
    async with tray.ActorSystem(address="tcp://127.0.0.1:0") as system:
        store = await system.spawn(SlowStore, prefix, 4 * nbytes + (64 << 20), spill_dir, True,
                                   name=STORE_NAME, max_concurrency=1 << 20)
        token = trio.lowlevel.current_trio_token()
        client = StoreClient(store, prefix, 100 * 1024, system.uid, trio.from_thread.run,
                             lambda fn, *a: token.run_sync_soon(fn, *a), system.address)
        blob = await trio.to_thread.run_sync(client.encode, value(nbytes), KEY, "owner")
        print("READY", system.address, blob.key, blob.size, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("nbytes", type=int)
    ap.add_argument("spill_dir")
    ap.add_argument("--delay", type=float, default=0.0)
    a = ap.parse_args()
    trio.run(main, a.prefix, a.nbytes, a.spill_dir, a.delay)
