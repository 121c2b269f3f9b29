"""tray.util.metrics: Ray's API and its checks (no cluster needed)."""

from __future__ import annotations

import pytest

from tray.dashboard import _metrics
from tray.util.metrics import Counter, Gauge, Histogram, snapshot


def test_tags_are_checked():
    c = Counter("unit_c", tag_keys=("a",))
    with pytest.raises(ValueError, match="missing value"):
        c.inc()
    with pytest.raises(ValueError, match="unknown tag"):
        c.inc(tags={"a": "1", "b": "2"})
    with pytest.raises(ValueError, match="> 0"):
        c.inc(0)
    with pytest.raises(ValueError, match="Prometheus name"):
        Gauge("bad-name")
    with pytest.raises(ValueError, match="boundaries"):
        Histogram("unit_h", boundaries=[2, 1])
    c.set_default_tags({"a": "x"})
    c.inc(3)
    got = {m["name"]: m for m in snapshot()}["unit_c"]
    assert got["samples"] == [[["x"], 3.0]]


def test_merge_sums_counters_per_node_and_keeps_the_newest_gauge():
    def rec(ts, node, counter, gauge, hist):
        return {"ts": ts, "node_id": node, "metrics": [
            {"name": "c", "kind": "counter", "description": "", "tag_keys": [], "samples": [[[], counter]]},
            {"name": "g", "kind": "gauge", "description": "", "tag_keys": [], "samples": [[[], gauge]]},
            {"name": "h", "kind": "histogram", "description": "", "tag_keys": [], "boundaries": [1.0],
             "samples": [[[], {"buckets": hist, "sum": 1.0, "count": sum(hist)}]]}]}

    merged = _metrics.merge([rec(2, "n1", 1, 5, [1, 0]), rec(1, "n1", 2, 9, [0, 1]), rec(1, "n2", 4, 1, [1, 1])])
    assert merged["c"]["values"] == {("n1",): 3, ("n2",): 4}
    assert merged["g"]["values"][("n1",)] == 5  # the newer record's
    assert merged["h"]["values"][("n1",)]["buckets"] == [1, 1]
    text = b"".join(f.name.encode() for f in _metrics.app_families(merged))
    assert b"c" in text
