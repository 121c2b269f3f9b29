"""The dashboard's REST API against a real head: token auth, state endpoints with filters
and limits, summaries, logs, timeline, cluster status and /metrics."""

from __future__ import annotations

import os
import time

import httpx

import tray
from tray.util.metrics import Counter, Gauge, Histogram


@tray.remote
def square(x: int) -> int:
    print(f"squaring {x}", flush=True)
    return x * x


@tray.remote
def boom() -> None:
    raise ValueError("boom on purpose")


@tray.remote
class Keeper:
    def pid(self) -> int:
        return os.getpid()


def data(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] is True
    return body["data"]


def test_requests_without_the_token_are_refused(head):
    url = head["url"]
    assert httpx.get(f"{url}/api/v0/nodes").status_code == 401
    assert httpx.get(f"{url}/api/v0/nodes", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{url}/metrics", headers={"X-Tray-Token": "wrong"}).status_code == 401
    assert httpx.get(f"{url}/api/jobs/").status_code == 401
    assert httpx.get(f"{url}/api/v0/nodes", headers={"X-Tray-Token": head["token"]}).status_code == 200
    # a browser asking for a page is sent to the login page
    r = httpx.get(f"{url}/", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_login_sets_a_cookie_that_opens_the_ui(head):
    with httpx.Client(base_url=head["url"]) as browser:
        assert "cluster token" in browser.get("/login").text
        bad = browser.post("/login", data={"token": "nope", "next": "/"})
        assert bad.status_code == 401 and "Wrong token" in bad.text
        r = browser.post("/login", data={"token": head["token"], "next": "//evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
        assert "tray_token" in browser.cookies
        page = browser.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert browser.get("/static/app.js").status_code == 200


def test_state_endpoints_list_what_the_driver_made(head):
    http = head["http"]
    assert tray.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    keeper = Keeper.options(name="keeper").remote()
    tray.get(keeper.pid.remote())
    nodes = data(http.get("/api/v0/nodes"))["result"]
    assert nodes["total"] == 1 and nodes["result"][0]["is_head_node"] is True
    actors = data(http.get("/api/v0/actors", params={"filter_keys": "class_name", "filter_predicates": "=",
                                                        "filter_values": "Keeper"}))["result"]["result"]
    assert [a["name"] for a in actors] == ["keeper"] and actors[0]["state"] == "ALIVE"
    tasks = data(http.get("/api/v0/tasks", params={"filter": "name=square", "limit": 3}))["result"]
    assert tasks["total"] >= 5 and tasks["num_after_truncation"] == 3
    assert all(t["state"] == "FINISHED" for t in tasks["result"])
    for resource in ("objects", "workers", "jobs", "placement_groups"):
        assert "result" in data(http.get(f"/api/v0/{resource}"))["result"]
    jobs = data(http.get("/api/v0/jobs"))["result"]["result"]
    assert all(not str(j.get("namespace", "")).startswith("_tray_") for j in jobs)  # the dashboard's own driver
    summary = data(http.get("/api/v0/tasks/summarize"))["result"]["node_id_to_summary"]["cluster"]
    assert summary["summary"]["square"]["state_counts"]["FINISHED"] >= 5
    assert http.get("/api/v0/nope").status_code == 404
    assert http.get("/api/v0/tasks", params={"filter": "bogus=1"}).status_code == 400
    assert http.get("/api/v0/tasks", params={"limit": "0"}).status_code == 400
    tray.kill(keeper)


def test_failed_tasks_show_their_error(head):
    ref = boom.remote()
    try:
        tray.get(ref)
    except ValueError:
        pass
    failed = data(head["http"].get("/api/v0/tasks", params={"filter": "state=FAILED", "detail": "true"}))
    rows = [t for t in failed["result"]["result"] if t["name"] == "boom"]
    assert rows and "boom on purpose" in (rows[0]["error_message"] or "")


def test_logs_timeline_and_cluster_status(head):
    http = head["http"]
    tray.get(square.remote(7))
    deadline = time.monotonic() + 30
    while True:
        listing = data(http.get("/api/v0/logs"))["result"]
        files = [f for cats in listing.values() for fs in cats.values() for f in fs if f["stream"] == "out"]
        texts = [http.get("/api/v0/logs/file", params={"node_id": f["node_id"], "filename": f["name"]}).text
                 for f in files]
        if any("squaring 7" in t for t in texts):
            break
        assert time.monotonic() < deadline, "the task's output never reached a log file"
        time.sleep(0.3)
    assert http.get("/api/v0/logs/file", params={"node_id": "nope", "filename": "x"}).status_code == 404
    trace = http.get("/api/v0/timeline").json()
    assert any(e["ph"] == "X" and e["name"] == "square" for e in trace)
    status = data(http.get("/api/cluster_status"))["clusterStatus"]
    assert status["alive"] == 1 and status["resources_total"]["CPU"] == 2.0


@tray.remote
def record_metrics() -> None:
    c = Counter("test_app_requests", description="requests", tag_keys=("route",))
    c.set_default_tags({"route": "/a"})
    c.inc()
    c.inc(2.0, tags={"route": "/b"})
    Gauge("test_app_queue", tag_keys=()).set(7)
    Histogram("test_app_latency", boundaries=[0.1, 1.0]).observe(0.5)


def test_metrics_include_the_clusters_and_the_apps_within_a_bound(head):
    tray.get(record_metrics.remote())
    deadline = time.monotonic() + 30
    while True:
        text = head["http"].get("/metrics").text
        if "test_app_requests_total" in text:
            break
        assert time.monotonic() < deadline, "application metrics never reached /metrics"
        time.sleep(0.5)
    assert 'tray_tasks{State="FINISHED"}' in text
    assert "tray_object_store_used_bytes" in text and "tray_resources_total" in text
    assert 'route="/b"' in text and "test_app_queue" in text and 'test_app_latency_bucket{' in text
    series = data(head["http"].get("/api/metrics/series"))["samples"]
    assert series and "tasks" in series[-1]
