"""Execution options do what they say: ``concurrency=`` bounds tasks in flight, ``preserve_order``
orders outputs, ``verbose_progress`` picks the progress lines, ``target_max_block_size`` cuts
large outputs; and the shuffle's plan and block compaction (pure)."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tray.data import _blocks, _shuffle
from tray.data.context import DataContext


@pytest.fixture
def ctx(rd) -> Iterator[DataContext]:
    before = DataContext.get_current()
    fresh = before.copy()
    DataContext._set_current(fresh)
    yield fresh
    DataContext._set_current(before)


def _interval(b):
    t0 = time.time()
    time.sleep(0.2)
    n = len(b["id"])
    return {"id": b["id"], "t0": np.full(n, t0), "t1": np.full(n, time.time())}


def _overlaps(rows) -> int:
    """The most tasks that were running at one time, from their (start, end) stamps."""
    spans = sorted({(r["t0"], r["t1"]) for r in rows})
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    most = cur = 0
    for _, d in events:
        cur += d
        most = max(most, cur)
    return most


def test_concurrency_bounds_tasks_in_flight(rd, ctx):
    free = rd.range(4, override_num_blocks=4).map_batches(_interval, batch_size=None).take_all()
    assert _overlaps(free) >= 2  # the node runs two at once when nothing bounds it
    read = rd.range(4, override_num_blocks=4, concurrency=1).map_batches(_interval, batch_size=None).take_all()
    assert sorted(r["id"] for r in read) == list(range(4))
    assert _overlaps(read) == 1
    src = rd.range(4, override_num_blocks=4).materialize()
    mapped = src.map_batches(_interval, batch_size=None, concurrency=1).take_all()
    assert _overlaps(mapped) == 1
    pooled = src.map_batches(_interval, batch_size=None, compute=rd.TaskPoolStrategy(size=1)).take_all()
    assert _overlaps(pooled) == 1


def test_concurrency_arguments_are_checked(rd):
    class Udf:
        def __call__(self, b):
            return b

    with pytest.raises(ValueError, match="actor pool"):
        rd.range(3).map_batches(Udf, compute=rd.TaskPoolStrategy(size=2))
    with pytest.raises(ValueError, match="an int"):
        rd.range(3).map_batches(lambda b: b, concurrency=(1, 2))
    with pytest.raises(ValueError, match="positive"):
        rd.range(3, concurrency=0)


def _slow_first(b):
    if b["id"][0] == 0:
        time.sleep(2.0)
    return b


def test_preserve_order_off_yields_outputs_as_they_finish(rd, ctx):
    ds = rd.range(3, override_num_blocks=3).map_batches(_slow_first, batch_size=None)
    ctx.execution_options.preserve_order = True
    assert [r["id"] for r in ds.take_all()] == [0, 1, 2]
    ctx.execution_options.preserve_order = False
    got = [r["id"] for r in ds.take_all()]
    assert sorted(got) == [0, 1, 2] and got[0] != 0  # block 0 finished last


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress_lines(rd, monkeypatch) -> str:
    err = _Tty()
    monkeypatch.delenv("TRAY_PROGRESS_BAR", raising=False)
    monkeypatch.setattr(sys, "stderr", err)
    rd.range(20, override_num_blocks=2).map_batches(lambda b: b).random_shuffle(seed=1).take_all()
    return err.getvalue()


def test_verbose_progress_picks_the_progress_lines(rd, ctx, monkeypatch):
    ctx.execution_options.verbose_progress = True
    shown = _progress_lines(rd, monkeypatch)
    assert "ReadRange->MapBatches(<lambda>)" in shown and "RandomShuffle" in shown and "Dataset" in shown
    ctx.execution_options.verbose_progress = False
    shown = _progress_lines(rd, monkeypatch)
    assert "MapBatches" not in shown and "RandomShuffle" in shown and "Dataset" in shown
    ctx.enable_progress_bars = False
    assert _progress_lines(rd, monkeypatch) == ""
    with pytest.raises(AttributeError, match="verbose_progress"):
        ctx.verbose_progress = True  # Ray has it on ExecutionOptions only


def _wide(b):
    n = len(b["id"])
    return {"id": b["id"], "payload": np.ones((n, 1024))}  # 8 KiB a row


class _Wide:
    def __call__(self, b):
        return _wide(b)


def test_large_outputs_are_cut_to_target_max_block_size(rd, ctx):
    ctx.target_max_block_size = 2**20
    for ds in (rd.range(512, override_num_blocks=2).map_batches(_wide, batch_size=None),
               rd.range(512, override_num_blocks=2).map_batches(_Wide, batch_size=None, concurrency=1)):
        mat = ds.materialize()
        sizes = [m.size_bytes for _, m in mat._plan.source.bundles]
        assert mat.num_blocks() >= 6 and max(sizes) <= 2**20, sizes
        assert [r["id"] for r in mat.select_columns(["id"]).take_all()] == list(range(512))


def test_stored_slices_hold_only_their_rows():
    table = pa.table({"x": np.arange(100_000), "s": [str(i) for i in range(100_000)]})
    part = _blocks.compact(table.slice(500, 100))
    assert part.equals(table.slice(500, 100))
    assert part.get_total_buffer_size() < 10_000  # not the parent's megabytes
    whole = _blocks.compact(table)
    assert whole is table  # nothing to do: no copy


@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from([1.0, 2.0, 8.0]))
def test_shuffle_plan_covers_inputs_and_outputs_with_few_tasks(blocks, outputs, cpus):
    groups, shares = _shuffle.shuffle_plan(blocks, outputs, cpus)
    assert [i for g in groups for i in g] == list(range(blocks))
    assert all(groups) and all(s >= 1 for s in shares) and sum(shares) == outputs
    assert len(groups) <= max(1, 4 * cpus) and len(shares) <= max(1, 4 * cpus)
