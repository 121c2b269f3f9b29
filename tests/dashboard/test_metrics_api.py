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


def test_a_node_state_renders_and_reads_back_as_node_stats():
    from prometheus_client.parser import text_string_to_metric_families

    state = {"node_id": "n1", "resources_total": {"CPU": 2.0}, "resources_available": {"CPU": 1.0},
             "store": {"used": 10, "budget": 100, "spilled_bytes": 0, "objects": 1},
             "received": {("tray.control", "kv_get"): 4}, "pids": []}
    host = {"cpu_percent": 12.5, "cpu_count": 2, "mem_total": 1000, "mem_used": 400, "mem_available": 600,
            "procs_rss": 300, "procs_cpu_seconds": 1.5, "procs": 2}
    text = _metrics.render(_metrics.node_families(state, host)).decode()
    assert 'tray_rpc_received_total{Actor="tray.control",Method="kv_get",NodeId="n1"} 4.0' in text
    families = list(text_string_to_metric_families(text))
    assert all(f.name.startswith(_metrics.NODE_FAMILY_PREFIXES) for f in families)
    assert _metrics.node_stats(families) == {"n1": {"cpu_percent": 12.5, "cpu_count": 2.0, "mem_used": 400.0,
                                                    "mem_total": 1000.0, "procs_rss": 300.0, "procs": 2.0}}


def test_the_node_port_parses_requests_and_checks_the_token():
    from tray.dashboard._node_metrics import authorized, parse_request

    method, path, headers = parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t0k\r\n\r\n")
    assert (method, path) == ("GET", "/metrics") and authorized(headers, "t0k")
    assert not authorized(headers, "other") and not authorized({}, "t0k")
    assert authorized({"x-tray-token": "t0k"}, "t0k")
    for bad in (b"nonsense\r\n\r\n", b"GET /metrics\r\n\r\n", b"GET / HTTP/1.1\r\nno-colon\r\n\r\n"):
        with pytest.raises(ValueError):
            parse_request(bad)


def test_the_scrape_config_and_grafana_panels_name_what_is_exported():
    import json
    import re
    from importlib import resources

    yaml = pytest.importorskip("yaml")
    folder = resources.files("tray.dashboard") / "metrics"
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["tray"]["authorization"]["type"] == "Bearer"
    assert jobs["tray-nodes"]["http_sd_configs"][0]["url"].endswith("/api/prometheus/sd")
    exported = {"tray_tasks", "tray_actors", "tray_scheduler_pending_tasks", "tray_resources_total",
                "tray_resources_available", "tray_object_store_used_bytes", "tray_object_store_spilled_bytes"}
    state = {"node_id": "n", "resources_total": {}, "resources_available": {}, "store": {}, "received": {}}
    host = dict.fromkeys(("cpu_percent", "cpu_count", "mem_total", "mem_used", "mem_available", "procs_rss",
                          "procs_cpu_seconds", "procs"), 0)
    for fam in _metrics.node_families(state, host):
        exported |= {fam.name, fam.name + "_total"}
    panels = json.loads((folder / "grafana_dashboard.json").read_text())["panels"]
    for panel in panels:
        for target in panel["targets"]:
            names = set(re.findall(r"\btray_[a-z_]+", target["expr"]))
            assert names and names <= exported, (panel["title"], names - exported)


def test_task_rows_travel_packed_and_come_back_with_rays_keys():
    from tray.core import _tasklog

    log = _tasklog.TaskLog(lambda: "job1")
    rec = log.add("k", _tasklog.record("t1", "f", _tasklog.NORMAL_TASK, "job1", None, None, "PENDING_ARGS_AVAIL"))
    assert rec["state"] == "PENDING_ARGS_AVAIL"
    log.end("k")
    log.add("k2", _tasklog.record("t2", "g", _tasklog.NORMAL_TASK, "job1", None, None, "RUNNING"))
    rows = _tasklog.unpack(_tasklog.pack(log.values()))
    assert rows == log.rows() and [r["task_id"] for r in rows] == ["t1", "t2"]
    assert list(rows[0]) == list(_tasklog.ROW_KEYS) and rows[0]["state"] == "FINISHED"
