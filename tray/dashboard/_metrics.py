"""The cluster's metrics in Prometheus' text format (``/metrics``), and a short, bounded
history of a few of them for the Metrics page's live charts.

Everything is computed when asked (a scrape), from the state API, the object stores'
usage, this machine's CPU and memory, and the application metrics every process
published to the KV table (``tray.util.metrics``), merged per node: counters and
histograms summed over the node's processes, a gauge's latest value kept.
"""

from __future__ import annotations

import json
import time
from collections import Counter as Tally
from collections import deque
from typing import Any

from .. import lowlevel
from ..util import metrics as app_metrics

STALE_S = 3 * app_metrics.HEARTBEAT_S  # a process silent this long is gone: its metrics go too
HISTORY = 360  # samples kept for the live charts (30 min at one every 5 s): bounded memory
SAMPLE_EVERY_S = 2.0


def app_records() -> list[dict[str, Any]]:
    """The live processes' published metric snapshots."""
    now, out = time.time(), []
    for key in lowlevel.kv_keys(app_metrics.KEY_PREFIX, namespace=app_metrics.KV_NAMESPACE):
        raw = lowlevel.kv_get(key, namespace=app_metrics.KV_NAMESPACE)
        if raw is None:
            continue
        record = json.loads(raw)
        if now - record["ts"] > STALE_S:
            lowlevel.kv_del(key, namespace=app_metrics.KV_NAMESPACE)
            continue
        out.append(record)
    return out


def merge(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric name: its kind, description, tag keys, boundaries and ``values``:
    ``{(node_id, *tags): value}``, summed over each node's processes (gauges: the newest)."""
    merged: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r["ts"]):
        for m in record["metrics"]:
            entry = merged.setdefault(m["name"], {"kind": m["kind"], "description": m["description"],
                                                  "tag_keys": m["tag_keys"], "boundaries": m.get("boundaries"),
                                                  "values": {}})
            if entry["kind"] != m["kind"] or entry["tag_keys"] != m["tag_keys"]:
                continue  # the same name defined two ways: the first definition wins
            for tags, value in m["samples"]:
                key = (record["node_id"], *tags)
                old = entry["values"].get(key)
                if m["kind"] == "gauge" or old is None:
                    entry["values"][key] = value if m["kind"] != "histogram" else json.loads(json.dumps(value))
                elif m["kind"] == "counter":
                    entry["values"][key] = old + value
                else:
                    old["buckets"] = [a + b for a, b in zip(old["buckets"], value["buckets"])]
                    old["sum"] += value["sum"]
                    old["count"] += value["count"]
    return merged


def cluster_families() -> list[Any]:
    """The cluster's own metrics as prometheus_client metric families."""
    from prometheus_client.core import GaugeMetricFamily

    out = []
    tasks = lowlevel.cluster_state("tasks")
    fam = GaugeMetricFamily("tray_tasks", "Tasks by state (each process's live and recent ones)", labels=["State"])
    for state, n in sorted(Tally(t["state"] for t in tasks).items()):
        fam.add_metric([state], n)
    out.append(fam)
    fam = GaugeMetricFamily("tray_scheduler_pending_tasks", "Tasks waiting for a node or their arguments",
                            labels=["State"])
    for state in ("PENDING_NODE_ASSIGNMENT", "PENDING_ARGS_AVAIL"):
        fam.add_metric([state], sum(t["state"] == state for t in tasks))
    out.append(fam)
    fam = GaugeMetricFamily("tray_actors", "Actors by state", labels=["State"])
    for state, n in sorted(Tally(a["state"] for a in lowlevel.cluster_state("actors")).items()):
        fam.add_metric([state], n)
    out.append(fam)
    nodes = lowlevel.cluster_state("nodes")
    total = GaugeMetricFamily("tray_resources_total", "A node's resources", labels=["NodeId", "Name"])
    avail = GaugeMetricFamily("tray_resources_available", "A node's unreserved resources", labels=["NodeId", "Name"])
    alive = GaugeMetricFamily("tray_cluster_nodes", "Nodes by state", labels=["State"])
    for state, n in sorted(Tally(n["state"] for n in nodes).items()):
        alive.add_metric([state], n)
    for n in nodes:
        if n["state"] != "ALIVE":
            continue
        for name, v in (n.get("resources_total") or {}).items():
            total.add_metric([n["node_id"], name], v)
        for name, v in (n.get("resources_available") or {}).items():
            avail.add_metric([n["node_id"], name], v)
    out += [alive, total, avail]
    _rows, stores, _home = lowlevel.memory_state()
    used = GaugeMetricFamily("tray_object_store_used_bytes", "Bytes of objects in a node's shared memory",
                             labels=["NodeId"])
    budget = GaugeMetricFamily("tray_object_store_budget_bytes", "A node's object store budget", labels=["NodeId"])
    spilled = GaugeMetricFamily("tray_object_store_spilled_bytes", "Bytes spilled to disk", labels=["NodeId"])
    objects = GaugeMetricFamily("tray_object_store_objects", "Objects in a node's store", labels=["NodeId"])
    for node_id, s in stores.items():
        used.add_metric([node_id], s.get("used", 0))
        budget.add_metric([node_id], s.get("budget", 0))
        spilled.add_metric([node_id], s.get("spilled_bytes", 0))
        objects.add_metric([node_id], s.get("objects", 0))
    out += [used, budget, spilled, objects]
    out += host_families(next((n["node_id"] for n in nodes if n.get("is_head_node")), ""))
    return out


def host_families(node_id: str) -> list[Any]:
    """This machine's (the head's) CPU and memory use."""
    import psutil
    from prometheus_client.core import GaugeMetricFamily

    cpu = GaugeMetricFamily("tray_node_cpu_utilization", "CPU use of the head's machine, percent", labels=["NodeId"])
    cpu.add_metric([node_id], psutil.cpu_percent(interval=None))
    mem = psutil.virtual_memory()
    used = GaugeMetricFamily("tray_node_mem_used_bytes", "Memory used on the head's machine", labels=["NodeId"])
    used.add_metric([node_id], mem.total - mem.available)
    tot = GaugeMetricFamily("tray_node_mem_total_bytes", "Memory of the head's machine", labels=["NodeId"])
    tot.add_metric([node_id], mem.total)
    return [cpu, used, tot]


def app_families(merged: dict[str, dict[str, Any]]) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    out: list[Any] = []
    for name, m in sorted(merged.items()):
        labels = ["NodeId", *m["tag_keys"]]
        if m["kind"] == "counter":
            fam: Any = CounterMetricFamily(name, m["description"] or name, labels=labels)
            for key, v in m["values"].items():
                fam.add_metric(list(key), v)
        elif m["kind"] == "gauge":
            fam = GaugeMetricFamily(name, m["description"] or name, labels=labels)
            for key, v in m["values"].items():
                fam.add_metric(list(key), v)
        else:
            fam = HistogramMetricFamily(name, m["description"] or name, labels=labels)
            for key, v in m["values"].items():
                cumulative, running = [], 0
                for bound, n in zip([*map(str, m["boundaries"]), "+Inf"], v["buckets"]):
                    running += n
                    cumulative.append((bound, running))
                fam.add_metric(list(key), cumulative, v["sum"])
        out.append(fam)
    return out


def exposition() -> bytes:
    """Every metric, in Prometheus' text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    families = cluster_families() + app_families(merge(app_records()))

    class Collector:
        def collect(self) -> Any:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    return generate_latest(registry)


class History:
    """The last ``HISTORY`` samples of the charted metrics, taken when asked at most every
    ``SAMPLE_EVERY_S`` (no background work while nobody watches)."""

    def __init__(self) -> None:
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    def sample(self) -> list[dict[str, Any]]:
        if not self.samples or time.time() - self.samples[-1]["ts"] >= SAMPLE_EVERY_S:
            self.samples.append(take_sample())
        return list(self.samples)


def take_sample() -> dict[str, Any]:
    import psutil

    tasks = Tally(t["state"] for t in lowlevel.cluster_state("tasks"))
    actors = Tally(a["state"] for a in lowlevel.cluster_state("actors"))
    _rows, stores, _home = lowlevel.memory_state()
    nodes = [n for n in lowlevel.cluster_state("nodes") if n["state"] == "ALIVE"]
    cpu_total = sum((n.get("resources_total") or {}).get("CPU", 0) for n in nodes)
    cpu_free = sum((n.get("resources_available") or {}).get("CPU", 0) for n in nodes)
    mem = psutil.virtual_memory()
    return {"ts": time.time(), "tasks": dict(tasks), "actors": dict(actors),
            "store_used": sum(s.get("used", 0) for s in stores.values()),
            "spilled": sum(s.get("spilled_bytes", 0) for s in stores.values()),
            "cpus_used": cpu_total - cpu_free, "cpus_total": cpu_total,
            "host_cpu_percent": psutil.cpu_percent(interval=None), "host_mem_used": mem.total - mem.available,
            "app": {name: sum(v for v in m["values"].values() if isinstance(v, (int, float)))
                    for name, m in merge(app_records()).items() if m["kind"] != "histogram"}}
