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
                    old["buckets"] = [a + b for a, b in zip(old["buckets"], value["buckets"], strict=False)]
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
    for state, count in sorted(Tally(n["state"] for n in nodes).items()):
        alive.add_metric([state], count)
    for node in nodes:
        if node["state"] != "ALIVE":
            continue
        for name, v in (node.get("resources_total") or {}).items():
            total.add_metric([node["node_id"], name], v)
        for name, v in (node.get("resources_available") or {}).items():
            avail.add_metric([node["node_id"], name], v)
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
    return out


def host_sample(pids: list[int]) -> dict[str, Any]:
    """This machine's CPU and memory, and what the processes ``pids`` (a node's) use of them."""
    import psutil

    mem = psutil.virtual_memory()
    rss, cpu_s, alive = 0, 0.0, 0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            with p.oneshot():
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu_s += t.user + t.system
            alive += 1
        except psutil.Error:  # gone meanwhile
            continue
    return {"cpu_percent": psutil.cpu_percent(interval=None), "cpu_count": psutil.cpu_count() or 1,
            "mem_total": mem.total, "mem_used": mem.total - mem.available, "mem_available": mem.available,
            "procs_rss": rss, "procs_cpu_seconds": cpu_s, "procs": alive}


NODE_FAMILY_PREFIXES = ("tray_node_", "tray_rpc_")  # what only the nodes' own ports export


def node_families(state: dict[str, Any], host: dict[str, Any]) -> list[Any]:
    """One node's metrics (its port's): ``state`` is ``tray.lowlevel.node_state``'s answer,
    ``host`` :func:`host_sample`'s."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    nid = state["node_id"]

    def gauge(name: str, doc: str, value: float) -> Any:
        fam = GaugeMetricFamily(name, doc, labels=["NodeId"])
        fam.add_metric([nid], value)
        return fam

    out = [
        gauge("tray_node_cpu_utilization", "CPU use of the node's machine, percent", host["cpu_percent"]),
        gauge("tray_node_cpu_count", "CPUs of the node's machine", host["cpu_count"]),
        gauge("tray_node_mem_used_bytes", "Memory used on the node's machine", host["mem_used"]),
        gauge("tray_node_mem_available_bytes", "Memory available on the node's machine", host["mem_available"]),
        gauge("tray_node_mem_total_bytes", "Memory of the node's machine", host["mem_total"]),
        gauge("tray_node_processes_rss_bytes", "RSS of the node's processes (the node and its workers)",
              host["procs_rss"]),
        gauge("tray_node_processes", "The node's processes (the node and its workers)", host["procs"]),
    ]
    cpu = CounterMetricFamily("tray_node_processes_cpu_seconds", "CPU time of the node's processes alive now",
                              labels=["NodeId"])
    cpu.add_metric([nid], host["procs_cpu_seconds"])
    out.append(cpu)
    total = GaugeMetricFamily("tray_node_resources_total", "The node's resources", labels=["NodeId", "Name"])
    avail = GaugeMetricFamily("tray_node_resources_available", "The node's unreserved resources",
                              labels=["NodeId", "Name"])
    for name, v in sorted(state["resources_total"].items()):
        total.add_metric([nid, name], v)
    for name, v in sorted(state["resources_available"].items()):
        avail.add_metric([nid, name], v)
    out += [total, avail]
    store = state["store"]
    for key, name, doc in (("used", "used_bytes", "Bytes of objects in the node's shared memory"),
                           ("budget", "budget_bytes", "The node's object store budget"),
                           ("spilled_bytes", "spilled_bytes", "Bytes the node's store spilled to disk"),
                           ("objects", "objects", "Objects in the node's store")):
        if key in store:
            out.append(gauge(f"tray_node_object_store_{name}", doc, store[key]))
    rpc = CounterMetricFamily("tray_rpc_received", "Messages the node's system actors received from other "
                              "processes, by actor and method", labels=["NodeId", "Actor", "Method"])
    for (actor, method), n in sorted(state["received"].items()):
        rpc.add_metric([nid, actor, method], n)
    out.append(rpc)
    return out


def node_urls() -> dict[str, str]:
    """``{node_id: metrics URL}`` of the alive nodes that export metrics on a port of their own."""
    from ._node_metrics import KV_NAMESPACE, URL_PREFIX

    alive = {n["node_id"] for n in lowlevel.cluster_state("nodes") if n["state"] == "ALIVE"}
    out = {}
    for key in lowlevel.kv_keys(URL_PREFIX, namespace=KV_NAMESPACE):
        node_id = key[len(URL_PREFIX):]
        raw = lowlevel.kv_get(key, namespace=KV_NAMESPACE)
        if node_id in alive and raw is not None:
            out[node_id] = raw.decode()
    return out


SCRAPE_TIMEOUT_S = 5.0


def scrape_nodes(token: str) -> list[Any]:
    """Every alive node's own families (``NODE_FAMILY_PREFIXES``), scraped from its port, all at
    once; a node that does not answer within ``SCRAPE_TIMEOUT_S`` is left out."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    urls = node_urls()
    if not urls:
        return []

    def one(url: str) -> str:
        try:
            r = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=SCRAPE_TIMEOUT_S)
        except httpx.HTTPError:
            return ""
        return r.text if r.status_code == 200 else ""

    with ThreadPoolExecutor(max_workers=min(16, len(urls))) as pool:
        texts = list(pool.map(one, urls.values()))
    merged: dict[str, Any] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            if not fam.name.startswith(NODE_FAMILY_PREFIXES):
                continue
            have = merged.get(fam.name)
            if have is None:
                merged[fam.name] = fam
            else:
                have.samples.extend(fam.samples)
    return list(merged.values())


def node_stats(families: list[Any]) -> dict[str, dict[str, float]]:
    """``{node_id: {cpu_percent, mem_used, mem_total, procs_rss, ...}}`` out of scraped node families."""
    keys = {"tray_node_cpu_utilization": "cpu_percent", "tray_node_cpu_count": "cpu_count",
            "tray_node_mem_used_bytes": "mem_used", "tray_node_mem_total_bytes": "mem_total",
            "tray_node_processes_rss_bytes": "procs_rss", "tray_node_processes": "procs"}
    out: dict[str, dict[str, float]] = {}
    for fam in families:
        key = keys.get(fam.name)
        if key is None:
            continue
        for sample in fam.samples:
            out.setdefault(sample.labels.get("NodeId", ""), {})[key] = sample.value
    return out


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
                for bound, n in zip([*map(str, m["boundaries"]), "+Inf"], v["buckets"], strict=True):
                    running += n
                    cumulative.append((bound, running))
                fam.add_metric(list(key), cumulative, v["sum"])
        out.append(fam)
    return out


def exposition(token: str) -> bytes:
    """Every metric, in Prometheus' text format: the cluster's, every node's (scraped from its
    own port, with the cluster ``token``) and the applications'."""
    return render(cluster_families() + scrape_nodes(token) + app_families(merge(app_records())))


def render(families: list[Any]) -> bytes:
    """``families`` in Prometheus' text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    class Collector:
        def collect(self) -> Any:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)


class History:
    """The last ``HISTORY`` samples of the charted metrics, taken when asked at most every
    ``SAMPLE_EVERY_S`` (no background work while nobody watches)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.samples: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    def sample(self) -> list[dict[str, Any]]:
        if not self.samples or time.time() - self.samples[-1]["ts"] >= SAMPLE_EVERY_S:
            self.samples.append(take_sample(self.token))
        return list(self.samples)


def take_sample(token: str) -> dict[str, Any]:
    import psutil

    per_node = node_stats(scrape_nodes(token))
    tasks = Tally(t["state"] for t in lowlevel.cluster_state("tasks"))
    actors = Tally(a["state"] for a in lowlevel.cluster_state("actors"))
    _rows, stores, _home = lowlevel.memory_state()
    nodes = [n for n in lowlevel.cluster_state("nodes") if n["state"] == "ALIVE"]
    cpu_total = sum((n.get("resources_total") or {}).get("CPU", 0) for n in nodes)
    cpu_free = sum((n.get("resources_available") or {}).get("CPU", 0) for n in nodes)
    if per_node:  # every node's machine: CPU averaged, memory summed (a machine with several nodes counts once)
        ip_of = {n["node_id"]: n.get("node_ip") or n["node_id"] for n in nodes}
        machines = list({ip_of.get(nid, nid): v for nid, v in per_node.items()}.values())
        host_cpu = sum(v.get("cpu_percent", 0) for v in machines) / len(machines)
        host_mem = sum(v.get("mem_used", 0) for v in machines)
    else:  # no node exports metrics: this (the head's) machine
        host_cpu = psutil.cpu_percent(interval=None)
        mem = psutil.virtual_memory()
        host_mem = mem.total - mem.available
    return {"ts": time.time(), "tasks": dict(tasks), "actors": dict(actors),
            "store_used": sum(s.get("used", 0) for s in stores.values()),
            "spilled": sum(s.get("spilled_bytes", 0) for s in stores.values()),
            "cpus_used": cpu_total - cpu_free, "cpus_total": cpu_total,
            "host_cpu_percent": host_cpu, "host_mem_used": host_mem,
            "nodes": {nid: {k: v.get(k) for k in ("cpu_percent", "mem_used", "procs_rss")}
                      for nid, v in per_node.items()},
            "app": {name: sum(v for v in m["values"].values() if isinstance(v, (int, float)))
                    for name, m in merge(app_records()).items() if m["kind"] != "histogram"}}
