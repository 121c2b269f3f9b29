"""Every node's own metrics port, which Prometheus scrapes directly, against a real head
(``tray start --head``) and a second node (``tray start --address``): the token, the node's
machine and processes, RPC counts, the apps' metrics of the node, and how the dashboard
finds and merges every node's (``/api/prometheus/sd``, ``/metrics``, cluster status)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from dashboard_nodes import start_node, stop_head
from prometheus_client.parser import text_string_to_metric_families

import tray
from tray.util.metrics import Counter, flush

BOUND_S = 60.0


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]


def scrape(url: str, token: str) -> str:
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def until(what: str, fn: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + BOUND_S
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND_S} s"
        time.sleep(0.3)


def head_node_id() -> str:
    return next(n["node_id"] for n in tray.lowlevel.cluster_state("nodes") if n["is_head_node"])


@tray.remote
def count_hits() -> None:
    Counter("node_port_hits", description="hits", tag_keys=("k",)).inc(3, tags={"k": "x"})
    flush()


def test_the_node_port_needs_the_token_and_answers_only_get_metrics(head):
    url = head["metrics_url"]
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    auth = {"Authorization": f"Bearer {head['token']}"}
    base = url.rpartition("/metrics")[0]
    assert httpx.get(base + "/other", headers=auth, timeout=30).status_code == 404
    assert httpx.post(url, headers=auth, timeout=30).status_code == 405
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(b"nonsense\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert scrape(url, head["token"])  # still serving after the bad request


def test_the_node_port_shows_its_machine_processes_rpcs_and_apps(head):
    node = head_node_id()
    tray.get(count_hits.remote())

    def with_hits() -> str | None:
        text = scrape(head["metrics_url"], head["token"])
        return text if "node_port_hits_total" in text else None

    text = until("the task's metric on the node's port", with_hits)
    got = samples(text)
    mine = {name for name, labels, _ in got if labels.get("NodeId") == node}
    for name in ("tray_node_cpu_utilization", "tray_node_mem_used_bytes", "tray_node_mem_total_bytes",
                 "tray_node_processes_rss_bytes", "tray_node_processes_cpu_seconds_total",
                 "tray_node_object_store_budget_bytes", "tray_node_resources_total", "node_port_hits_total"):
        assert name in mine, name
    rss = next(v for name, labels, v in got if name == "tray_node_processes_rss_bytes")
    assert rss > 10 * 2**20  # the node process and its workers
    cpus = {labels["Name"]: v for name, labels, v in got if name == "tray_node_resources_total"}
    assert cpus["CPU"] == 2.0
    rpcs = {(labels["Actor"], labels["Method"]): v for name, labels, v in got if name == "tray_rpc_received_total"}
    assert rpcs[("tray.control", "register_job")] >= 1  # this driver joined through the head's control store
    hits = [(labels, v) for name, labels, v in got if name == "node_port_hits_total"]
    assert hits == [({"NodeId": node, "k": "x"}, 3.0)]


def test_a_second_node_exports_its_own_and_the_dashboard_finds_both(head):
    http, token = head["http"], head["token"]
    proc, urls = start_node("--address", head["address"], "--num-cpus", "1", token=token, want=("metrics",))
    try:
        own = samples(scrape(urls["metrics"], token))
        other = {labels["NodeId"] for name, labels, _ in own if name == "tray_node_cpu_utilization"}
        assert len(other) == 1 and head_node_id() not in other
        (other_id,) = other
        both = {head_node_id(), other_id}

        def targets() -> set[str]:
            sd = http.get("/api/prometheus/sd").json()
            return {t["labels"]["NodeId"] for t in sd} if len(sd) == 2 else set()

        assert until("both nodes in the service discovery", targets) == both
        sd = http.get("/api/prometheus/sd").json()
        assert {f"http://{t['targets'][0]}/metrics" for t in sd} == {head["metrics_url"], urls["metrics"]}
        merged = samples(http.get("/metrics").text)
        assert {labels["NodeId"] for name, labels, _ in merged if name == "tray_node_mem_used_bytes"} == both
        assert len([1 for name, _, _ in merged if name == "tray_node_mem_used_bytes"]) == 2  # one family, merged
        stats = http.get("/api/cluster_status").json()["data"]["clusterStatus"]["node_stats"]
        assert set(stats) == both and all(s["mem_total"] > 0 for s in stats.values())
    finally:
        stop_head(proc)
    until("the stopped node leaving the service discovery",
          lambda: [t["labels"]["NodeId"] for t in http.get("/api/prometheus/sd").json()] == [head_node_id()])
