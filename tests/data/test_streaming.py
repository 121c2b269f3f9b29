"""Streaming: a dataset several times the store passes through in bounded memory;
streaming_split shards consumed by concurrent actors see every row exactly once."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil

import tray


def _node_rss() -> int:
    me = psutil.Process()
    total = me.memory_info().rss
    for p in me.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _fill(b):
    n = len(b["id"])
    return {"id": b["id"], "payload": np.ones((n, 1024), dtype=np.float64)}  # 8 KiB per row


def test_one_gib_streams_through_a_200_mib_store(rd):
    """1 GiB of blocks made, consumed and dropped: no out-of-memory, no unbounded spilling; the
    node's memory stays under the store plus a constant (workers, interpreter, a block per task)."""
    rows = 2**30 // 8192
    ds = rd.range(rows, override_num_blocks=128).map_batches(_fill, batch_size=None)
    base = _node_rss()
    peak = [base]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _node_rss())
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    seen = 0
    total = 0.0
    try:
        for batch in ds.iter_batches(batch_size=4096):
            seen += len(batch["id"])
            total += float(batch["payload"][:, 0].sum())
    finally:
        stop.set()
        t.join()
    assert seen == rows and total == rows
    grew = peak[0] - base
    # store budget (200 MiB) + a constant: RSS counts shared pages in every process that maps them
    assert grew < 200 * 2**20 + 400 * 2**20, f"node memory grew by {grew / 2**20:.0f} MiB"
    used = [s for s in tray.util.state.list_objects()] if hasattr(tray.util, "state") else []
    assert len(used) < 64


@tray.remote(num_cpus=0)
class Consumer:
    def take(self, it, epochs=1):
        out = []
        for _ in range(epochs):
            out.append([int(x) for b in it.iter_batches(batch_size=32) for x in b["id"]])
        return out


def test_streaming_split_rows_exactly_once_across_actors(rd):
    ds = rd.range(2000, override_num_blocks=20).map_batches(lambda b: {"id": b["id"]})
    its = ds.streaming_split(3)
    consumers = [Consumer.remote() for _ in its]
    got = tray.get([c.take.remote(it, 2) for c, it in zip(consumers, its, strict=False)])
    for epoch in range(2):
        rows = sorted(x for shard in got for x in shard[epoch])
        assert rows == list(range(2000))
    equal = ds.streaming_split(3, equal=True)  # 666 rows each, 2 dropped, blocks cut as they stream
    got = tray.get([c.take.remote(it) for c, it in zip(consumers, equal, strict=False)])
    assert [len(g[0]) for g in got] == [666] * 3
    rows = [x for g in got for x in g[0]]
    assert len(set(rows)) == 1998 and set(rows) <= set(range(2000))
    for c in consumers:
        tray.kill(c)


def test_limit_stops_reading_early(rd):
    ds = rd.range(10**9, override_num_blocks=100000)
    assert ds.take(3) == [{"id": 0}, {"id": 1}, {"id": 2}]
