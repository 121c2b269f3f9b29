"""``tray.timeline`` and ``tray timeline``: every worker's recent tasks and actor calls as a
Chrome trace (the JSON event format chrome://tracing and Perfetto read)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import tray
from tray._cli import main
from tray.core._timeline import SPANS, Recorder

SPAN_KEYS = {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"}


@pytest.fixture(scope="module")
def session():
    info = tray.init(num_cpus=2)
    yield info
    tray.shutdown()


@tray.remote
def work(i: int) -> int:
    return i


@tray.remote(max_retries=0)
def broken() -> None:
    raise RuntimeError("no")


@tray.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


@tray.remote
class Sleeper:
    async def nap(self, s: float) -> float:
        await asyncio.sleep(s)
        return s


def check_chrome_trace(events: list) -> tuple[list[dict], list[dict]]:
    """Every event is a well-formed Chrome trace event: spans ("X") and metadata ("M")."""
    assert isinstance(events, list)
    spans = [e for e in events if e["ph"] == "X"]
    meta = [e for e in events if e["ph"] == "M"]
    assert len(spans) + len(meta) == len(events)
    for e in spans:
        assert set(e) == SPAN_KEYS
        assert isinstance(e["name"], str) and isinstance(e["cat"], str) and isinstance(e["args"], dict)
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        assert type(e["pid"]) is int and type(e["tid"]) is int
    for e in meta:
        assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
        assert type(e["pid"]) is int and type(e["tid"]) is int
    named = {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in spans} <= named  # every row has a name
    return spans, meta


def test_timeline_has_every_task_and_actor_call_as_a_chrome_trace(session, tmp_path):
    start = time.time()
    refs = [work.remote(i) for i in range(20)]
    assert tray.get(refs) == list(range(20))
    with pytest.raises(RuntimeError):
        tray.get(broken.remote())
    c = Counter.remote()
    assert tray.get([c.incr.remote() for _ in range(3)]) == [1, 2, 3]
    path = tmp_path / "trace.json"
    events = tray.timeline(str(path))
    assert json.loads(path.read_text()) == events
    spans, meta = check_chrome_trace(events)
    by_id = {e["args"]["task_id"]: e for e in spans}
    for ref in refs:
        e = by_id[ref.hex()]
        assert (e["name"], e["cat"], e["args"]["status"]) == ("work", "task", "ok")
        assert start - 5 <= e["ts"] / 1e6 <= time.time() + 5  # wall-clock microseconds
    assert any(e["name"] == "broken" and e["args"]["status"] == "error" for e in spans)
    calls = [e for e in spans if e["name"] == "Counter.incr"]
    assert len(calls) == 3 and {e["cat"] for e in calls} == {"actor_call"} and len({e["tid"] for e in calls}) == 1
    assert [e["name"] for e in spans if e["cat"] == "actor_creation"].count("Counter.__init__") == 1
    node = tray.get_runtime_context().get_node_id()
    assert [e["args"]["name"] for e in meta if e["name"] == "process_name"] == [f"node {node}"]
    worker_pids = {e["args"]["worker_pid"] for e in spans}
    assert {e["tid"] for e in spans if e["cat"] == "task"} <= worker_pids


def test_overlapping_async_actor_calls_get_lanes_of_their_own(session):
    s = Sleeper.remote()
    assert tray.get([s.nap.remote(0.2) for _ in range(3)]) == [0.2] * 3
    spans, meta = check_chrome_trace(tray.timeline())
    naps = [e for e in spans if e["name"] == "Sleeper.nap"]
    assert len(naps) == 3 and len({e["tid"] for e in naps}) == 3  # they ran at once
    rows: dict[tuple[int, int], list[dict]] = {}
    for e in spans:
        rows.setdefault((e["pid"], e["tid"]), []).append(e)
    for row in rows.values():  # on each row, spans follow each other (viewers need that)
        row.sort(key=lambda e: e["ts"])
        assert all(a["ts"] + a["dur"] <= b["ts"] + 1e-3 for a, b in zip(row, row[1:], strict=False))


def test_the_ring_of_spans_is_bounded():
    rec = Recorder()
    for i in range(SPANS + 5):
        rec.spans.append(("task", "t", str(i), i, i + 1, "ok"))
    dump = rec.dump([("task", "now", "x", 0)])
    assert len(dump["spans"]) == SPANS + 1 and dump["spans"][0][2] == "5" and dump["spans"][-1][5] == "running"


def test_tray_timeline_command_writes_the_trace(session, tmp_path, capsys):
    tray.get(work.remote(1))
    path = tmp_path / "cli.json"
    assert main(["timeline", "--output", str(path), "--address", session["address"]]) == 0
    assert f"to {path}" in capsys.readouterr().out
    spans, _meta = check_chrome_trace(json.loads(path.read_text()))
    assert any(e["name"] == "work" for e in spans)
