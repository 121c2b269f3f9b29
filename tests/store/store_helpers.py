"""What the store's tests share: the client's write and read sequence, file listings, and
a store actor running in a helper thread (for Hypothesis state machines)."""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import trio

import tray
from tray.store import ObjectStore, Segments, pack
from tray.store._shm import SHM_DIR


def shm_keys(prefix: str) -> set[str]:
    """Keys that have a file in /dev/shm under ``prefix`` (not counting pooled files)."""
    return {n[len(prefix):] for n in os.listdir(SHM_DIR) if n.startswith(prefix) and "~pool" not in n}


def pool_files(prefix: str) -> set[str]:
    """Files of freed objects the store keeps for reuse."""
    return {n[len(prefix):] for n in os.listdir(SHM_DIR) if n.startswith(prefix + "~pool")}


def spill_keys(spill_dir: str, prefix: str) -> set[str]:
    """Keys that have a spill file in ``spill_dir``."""
    try:
        names = os.listdir(spill_dir)
    except FileNotFoundError:
        return set()
    return {n[len(prefix):] for n in names if n.startswith(prefix)}


async def spawn_store(system: tray.ActorSystem, prefix: str, budget: int, spill_dir: str, own: bool = True):
    # As the node starts it: concurrent handlers (a restore waits for room), errors resume.
    # (a full store waits a moment for objects being written, not the 10 s a node's store does)
    return await system.spawn(ObjectStore, prefix, budget, spill_dir, own, 0.2, max_concurrency=1 << 20)


async def put(store: Any, segs: Segments, key: str, value: Any, owner: str = "driver", writer: str = "driver") -> int:
    """Store ``value`` as StoreClient.encode does: reserve, write the file, seal. Its size."""
    packed = pack(value)
    await store.create.ask(key, packed.size, owner, writer)
    segs.write(key, packed)
    store.seal.tell_nowait(key)
    return packed.size


async def get(store: Any, segs: Segments, key: str) -> Any:
    """Read ``key`` as StoreClient.decode does: in place, restored first if it was spilled."""
    found, value = segs.read(key)
    if not found:
        await store.restore.ask(key)
        found, value = segs.read(key)
        assert found, f"{key} was restored but has no file"
    return value


class StoreThread:
    """An ActorSystem with one ObjectStore, run by ``trio.run`` in a helper thread;
    ``call(afn, *args)`` runs ``await afn(*args)`` in it from the calling thread."""

    def __init__(self, prefix: str, budget: int, spill_dir: str) -> None:
        self.store: Any = None
        self._args = (prefix, budget, spill_dir)
        self._ready: queue.Queue[BaseException | None] = queue.Queue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="store-test", daemon=True)
        self.thread.start()
        err = self._ready.get()
        if err is not None:
            raise err

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported by __init__ or close()
            self._error = exc
            self._ready.put(exc)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with tray.ActorSystem() as system:
            self.store = await spawn_store(system, *self._args)
            self._ready.put(None)
            await self._stop.wait()

    def call(self, afn: Any, *args: Any) -> Any:
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def close(self) -> None:
        """Stop the store (it sweeps its files) and the loop; wait for both."""
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the store's loop did not stop"
        if self._error is not None:
            raise self._error
