"""Objects between nodes: stores in systems of their own, on TCP loopback (and one in a
process of its own), pulling secondary copies from each other."""

from __future__ import annotations

import inspect
import os
import pickle
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from store_helpers import shm_keys
from transfer_source import value as source_value

import tray
from tray.exceptions import ObjectLostError
from tray.store import STORE_NAME, ObjectStore, Segments, StoreClient, Stored
from tray.store._shm import HEADER
from tray.store._transfer import pull, spans

MiB = 1 << 20
TOKEN = "transfer-test-token"
SOURCE = Path(__file__).with_name("transfer_source.py")


def value(i: int, size: int = MiB) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 256, size, dtype=np.uint8)


class Node:
    """One node's share of a test: a listening system, its store, a client of it."""

    def __init__(self, system: tray.ActorSystem, store: Any, prefix: str) -> None:
        self.system, self.store, self.prefix = system, store, prefix
        self.address = system.address
        token = trio.lowlevel.current_trio_token()
        self.client = StoreClient(store, prefix, 100 * 1024, system.uid, trio.from_thread.run,
                                  lambda fn, *a: token.run_sync_soon(fn, *a), self.address)

    async def put(self, key: str, val: Any) -> Stored:
        return await trio.to_thread.run_sync(self.client.encode, val, key, "owner")

    async def get(self, blob: Stored) -> Any:
        return await trio.to_thread.run_sync(self.client.decode, blob)

    async def stats(self) -> dict[str, Any]:
        return await self.store.stats.ask()

    def files(self) -> set[str]:
        return shm_keys(self.prefix)


@asynccontextmanager
async def node(prefix: str, tmp_path: Path, budget: int = 64 * MiB, chunk: int = 256 * 1024,
               store_cls: type = ObjectStore):
    """A node (system + store); on exit, checks that its store swept its files."""
    async with tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as system:
        store = await system.spawn(store_cls, prefix, budget, str(tmp_path / prefix / "spill"), True, 0.2,
                                   chunk, name=STORE_NAME, max_concurrency=1 << 20)
        yield Node(system, store, prefix)
    assert shm_keys(prefix) == set()


@pytest.fixture
def run(prefix, tmp_path):
    """Run ``await body(a, b, c)`` with three nodes of the given budgets (and chunk size)."""

    def go(body, budgets=(64 * MiB,) * 3, chunk=256 * 1024, store_cls=ObjectStore):
        async def main():
            async with node(prefix + "a-", tmp_path, budgets[0], chunk, store_cls) as a, \
                    node(prefix + "b-", tmp_path, budgets[1], chunk) as b, \
                    node(prefix + "c-", tmp_path, budgets[2], chunk) as c:
                with trio.fail_after(30):
                    await body(a, b, c)

        trio.run(main)

    return go


async def wait_until(cond, timeout: float = 5.0) -> None:
    """Poll ``cond()`` (a bool, or an awaitable of one) until it is true."""
    with trio.fail_after(timeout):
        while True:
            ok = cond()
            if inspect.isawaitable(ok):
                ok = await ok
            if ok:
                return
            await trio.sleep(0.01)


async def pins(n: Node, key: str) -> int:
    return next(r["pins"] for r in await n.store.list_objects.ask() if r["object_id"] == key)


async def pins_are(n: Node, key: str, expected: int) -> bool:
    return await pins(n, key) == expected


async def is_fetching(n: Node) -> bool:
    return any(r["state"] == "fetching" for r in await n.store.list_objects.ask())


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


# --------------------------------------------------------------------- reading


def test_stored_markers_stay_small_and_name_their_node():
    blob = Stored("a" * 28, 123_456_789, "tcp://10.0.0.12:6380")
    data = pickle.dumps(blob, 5)
    back = pickle.loads(data)
    assert (back.key, back.size, back.node) == (blob.key, blob.size, blob.node) and len(data) < 120
    assert pickle.loads(pickle.dumps(Stored("k", 5), 5)).node == ""  # a marker of before: this node's


def test_value_written_on_one_node_is_read_on_another(run):
    async def body(a, b, c):
        arr = value(1, 3 * MiB + 123)
        blob = await a.put("x", arr)
        assert (blob.node, blob.size) == (a.address, blob.size)
        got = await b.get(blob)
        assert np.array_equal(got, arr)
        assert not got.flags.writeable and not got.flags.owndata  # a view of B's shared memory
        assert b.files() == {"x"} and (await b.stats())["copies"] == 1
        row = next(r for r in await b.store.list_objects.ask() if r["object_id"] == "x")
        assert (row["copy"], row["source"], row["state"]) == (True, a.address, "sealed")
        served = (await a.stats())["chunks_served"]
        assert served == -(-(HEADER + blob.size) // (256 * 1024))
        assert np.array_equal(await b.get(blob), arr)  # read in place again: no second pull
        assert (await a.stats())["chunks_served"] == served
        assert next(r for r in await a.store.list_objects.ask() if r["object_id"] == "x")["holders"] == 1
        # the node that holds the primary reads its own file; small values stay inline
        assert np.array_equal(await a.get(blob), arr)
        assert await c.get(await a.put("small", b"tiny")) == b"tiny"

    run(body)


def test_big_chunks_travel_on_the_data_connection(run):
    async def body(a, b, c):
        arr = value(2, 20 * MiB)
        blob = await a.put("big", arr)
        assert np.array_equal(await b.get(blob), arr)
        assert (await a.stats())["chunks_served"] == 3

    run(body, chunk=8 * MiB)


def test_concurrent_fetches_on_a_node_pull_once(run):
    async def body(a, b, c):
        arr = value(3, 4 * MiB)
        blob = await a.put("x", arr)
        results = []

        async def reader():
            results.append(await b.get(blob))

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(reader)
            nursery.start_soon(b.store.fetch.ask, "x", blob.size, a.address)
        assert len(results) == 4 and all(np.array_equal(r, arr) for r in results)
        chunks = -(-(HEADER + blob.size) // (256 * 1024))
        assert (await a.stats())["chunks_served"] == chunks
        assert (await b.stats())["fetches"] == 1
        await c.get(blob)  # another node pulls its own copy
        assert (await a.stats())["chunks_served"] == 2 * chunks

    run(body)


# --------------------------------------------------------------------- freeing


def test_freeing_the_primary_drops_every_copy(run):
    async def body(a, b, c):
        blobs = [await a.put(k, value(i)) for i, k in enumerate("xyz")]
        for blob in blobs:
            await b.get(blob)
        await c.get(blobs[0])
        assert b.files() == set("xyz") and c.files() == {"x"}
        await a.store.free.ask(["x", "y"])
        await wait_until(lambda: b.files() == {"z"} and c.files() == set())
        st = await b.stats()
        assert st["copies"] == 1 and st["used"] == st["copy_bytes"]
        # the owner's client on B frees z: B forwards it to A, which tells B to drop its copy
        await trio.to_thread.run_sync(b.client.free, [blobs[2]])
        await wait_until(lambda: b.files() == set())
        assert (await b.stats())["used"] == 0 and (await a.stats())["objects"] == 0

    run(body)


def test_pin_and_unpin_reach_the_node_of_the_object(run):
    async def body(a, b, c):
        blob = await a.put("x", value(1))
        local = await b.put("y", value(2))
        await trio.to_thread.run_sync(b.client.pin, [blob, local])
        await wait_until(lambda: pins_are(a, "x", 1))
        assert await pins(b, "y") == 1
        await trio.to_thread.run_sync(b.client.unpin, [blob, local])
        await wait_until(lambda: pins_are(a, "x", 0))
        assert await pins(b, "y") == 0
        await b.store.forward.ask(b.address, "pin", ["y"])  # its own node: done there and then
        assert await pins(b, "y") == 1
        with pytest.raises(ValueError, match="cannot forward"):
            await b.store.forward.ask(a.address, "restore", ["x"])

    run(body)


def test_a_fetch_of_a_freed_object_is_lost_and_leaves_no_file(run):
    async def body(a, b, c):
        blob = await a.put("x", value(1))
        await a.store.free.ask(["x"])
        with pytest.raises(ObjectLostError, match=f"object x .*{a.address}"):
            await b.get(blob)
        assert b.files() == set() and (await b.stats())["used"] == 0
        nowhere = dead_address()
        with pytest.raises(ObjectLostError, match=f"object x .* at {nowhere}: nothing answers there"):
            await c.store.fetch.ask("x", blob.size, nowhere)

    run(body)


class FreeingStore(ObjectStore):
    """Frees its object once it has served two chunks of it (its owner dropped it meanwhile)."""

    async def read_chunk(self, key: str, offset: int, length: int) -> memoryview:
        if self.chunks_served == 2:
            self.free([key])
        return await super().read_chunk(key, offset, length)


def test_an_object_freed_mid_fetch_is_lost_and_leaves_no_file(run):
    async def body(a, b, c):
        blob = await a.put("x", value(1, 4 * MiB))
        with pytest.raises(ObjectLostError, match=f"object x .*{a.address}"):
            await b.get(blob)
        st = await b.stats()
        assert b.files() == set() and (st["used"], st["copies"]) == (0, 0)

    run(body, store_cls=FreeingStore)


class BreakingStore(ObjectStore):
    """Drops its connections once, after it has served one chunk of its object."""

    broke = False

    async def read_chunk(self, key: str, offset: int, length: int) -> memoryview:
        if self.chunks_served == 1 and not BreakingStore.broke:
            BreakingStore.broke = True
            for peer in list(self.system._net.peers):
                peer.close("broken on purpose")
        return await super().read_chunk(key, offset, length)


def test_a_pull_whose_connection_breaks_is_retried_on_a_new_one(run):
    async def body(a, b, c):
        blob = await a.put("x", value(1, 2 * MiB))
        assert np.array_equal(await b.get(blob), value(1, 2 * MiB))
        assert BreakingStore.broke and b.files() == {"x"} and (await b.stats())["fetches"] == 1

    run(body, store_cls=BreakingStore)


def test_wrong_sizes_and_bad_chunk_requests_are_refused(run):
    async def body(a, b, c):
        blob = await a.put("x", value(1))
        for size in (blob.size + 1, blob.size - 1, 0, 1 << 50):
            with pytest.raises(ValueError, match="refusing to fetch"):
                await b.store.fetch.ask("x", size, a.address)
        with pytest.raises(ValueError, match="bad size"):
            await b.store.fetch.ask("x", -5, a.address)
        assert b.files() == set() and (await b.stats())["used"] == 0
        for offset, length in ((-1, 10), (0, 0), (0, 1 << 40), ("0", 10)):
            with pytest.raises(ValueError, match="bad chunk request"):
                await a.store.read_chunk.ask("x", offset, length)
        with pytest.raises(ValueError, match="beyond the end"):
            await a.store.read_chunk.ask("x", HEADER + blob.size - 10, 11)
        assert bytes(await a.store.read_chunk.ask("x", 0, HEADER))[:8] == b"TRYSEG01"
        with pytest.raises(ObjectLostError):
            await a.store.read_chunk.ask("nope", 0, 10)
        assert np.array_equal(await b.get(blob), value(1))  # all that left the stores as they were

    run(body)


# ------------------------------------------------------------ memory pressure


def test_a_full_node_deletes_copies_instead_of_spilling(run):
    async def body(a, b, c):
        blobs = {k: await a.put(k, value(i)) for i, k in enumerate("vwxyz")}

        async def get(k):
            assert np.array_equal(await b.get(blobs[k]), value("vwxyz".index(k)))

        for k in "vwx":
            await get(k)
        mine = await b.put("own", value(9))  # B's own object: the oldest copy makes room for it
        assert b.files() == {"w", "x", "own"}
        await b.store.pin.ask(["w"])
        await get("y")
        await get("z")  # each new copy pushes out the oldest unpinned one
        st = await b.stats()
        assert (st["spills"], st["evictions"], st["copies"]) == (0, 3, 2)
        assert b.files() == {"w", "z", "own"}
        await get("v")  # an evicted copy comes back on demand
        assert b.files() == {"w", "v", "own"} and (await b.stats())["spills"] == 0
        await b.store.pin.ask(["v"])
        await get("z")  # no unpinned copy left: now a primary spills
        assert b.files() == {"w", "v", "z"} and (await b.stats())["spills"] == 1
        assert np.array_equal(await b.get(mine), value(9))  # restored: the unpinned copy goes
        assert b.files() == {"w", "v", "own"}
        assert (await b.stats())["evictions"] == 5

    run(body, budgets=(64 * MiB, 3 * MiB + MiB // 2, 64 * MiB))


def test_a_spilled_primary_is_still_fetched(run):
    async def body(a, b, c):
        blobs = [await a.put(k, value(i)) for i, k in enumerate("xyz")]
        st = await a.stats()
        assert st["spills"] >= 1 and "x" not in a.files()
        assert np.array_equal(await b.get(blobs[0]), value(0))
        assert (await a.stats())["restores"] >= 1

    run(body, budgets=(2 * MiB + MiB // 2, 64 * MiB, 64 * MiB))


# ----------------------------------------------------- a source of its own


def _start_source(prefix: str, tmp_path: Path, nbytes: int, delay: float = 0.0) -> tuple[subprocess.Popen, Stored]:
    env = dict(os.environ, TRAY_CLUSTER_TOKEN=TOKEN)
    p = subprocess.Popen([sys.executable, str(SOURCE), prefix, str(nbytes), str(tmp_path / "src-spill"),
                          "--delay", str(delay)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    line = p.stdout.readline().decode().split()
    if not line or line[0] != "READY":
        p.kill()
        p.wait()
        raise RuntimeError(f"the source process failed: {line}")
    return p, Stored(line[2], int(line[3]), line[1])


def _stop(p: subprocess.Popen, prefix: str) -> None:
    if p.poll() is None:
        p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    Segments(prefix).sweep()


def test_a_value_of_another_process_is_read(prefix, tmp_path):
    p, blob = _start_source(prefix + "src-", tmp_path, 6 * MiB)
    try:
        async def main():
            async with node(prefix + "b-", tmp_path) as b:
                got = await b.get(blob)
                assert np.array_equal(got, source_value(6 * MiB)) and not got.flags.writeable
                await trio.to_thread.run_sync(b.client.free, [blob])  # forwarded to the source
                await wait_until(lambda: b.files() == set())

        trio.run(main)
        assert shm_keys(prefix + "src-") == set()  # the source freed it on B's word
    finally:
        _stop(p, prefix + "src-")


def test_a_source_that_dies_mid_fetch_loses_the_object_and_leaves_no_file(prefix, tmp_path):
    p, blob = _start_source(prefix + "src-", tmp_path, 8 * MiB, delay=0.05)
    try:
        async def main():
            async with node(prefix + "b-", tmp_path) as b:
                async def kill_when_started():
                    await wait_until(lambda: is_fetching(b))
                    await trio.sleep(0.1)
                    p.kill()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(kill_when_started)
                    with pytest.raises(ObjectLostError, match=f"object {blob.key} .*{blob.node}"):
                        await b.get(blob)
                assert b.files() == set() and (await b.stats())["used"] == 0
                with pytest.raises(ObjectLostError, match=blob.node):  # and it stays lost
                    await b.get(blob)

        trio.run(main)
    finally:
        _stop(p, prefix + "src-")


# ------------------------------------------------------------------ chunking


@settings(max_examples=50, deadline=None)
@given(total=st.integers(0, 5000), chunk=st.integers(32, 700), inflight=st.integers(1, 6),
       delays=st.lists(st.integers(0, 3), min_size=1, max_size=20))
def test_chunks_of_any_size_reassemble_exactly(tmp_path_factory, total, chunk, inflight, delays):
    data = np.random.default_rng(total).integers(0, 256, total, dtype=np.uint8).tobytes()
    assert b"".join(data[o:o + n] for o, n in spans(total, chunk)) == data
    asked = []

    async def read(offset, length):
        asked.append(offset)
        await trio.sleep(delays[len(asked) % len(delays)] / 1000)  # replies come back out of order
        return memoryview(data)[offset:offset + length]

    path = tmp_path_factory.mktemp("pull") / "f"
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    try:
        trio.run(pull, read, fd, total, chunk, inflight, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert sorted(asked) == list(range(0, total, chunk))
