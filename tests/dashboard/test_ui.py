"""The web UI in headless Chromium (Debian's, driven by Playwright): each page loads without
console errors and shows the node, an actor, a job and a Serve application the test created;
a screenshot of each page is saved under the test's tmp dir."""

from __future__ import annotations

import os
import shutil
import time

import pytest

import tray

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
PAGES = ("overview", "jobs", "actors", "tasks", "cluster", "logs", "metrics", "serve")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) or shutil.which("chromium") is None,
                                reason="needs Debian's chromium (apt-get install chromium)")


@tray.remote
class UiActor:
    def ping(self) -> str:
        print("ui actor says hi", flush=True)
        return "pong"


def test_every_page_loads_and_shows_what_the_test_made(head, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    actor = UiActor.options(name="ui_actor").remote()
    assert tray.get(actor.ping.remote()) == "pong"
    from tray.job_submission import JobSubmissionClient

    with JobSubmissionClient(head["url"]) as client:
        sid = client.submit_job(entrypoint="echo ui job output", submission_id="ui_job")
        deadline = time.monotonic() + 120
        while not client.get_job_status(sid).is_terminal():
            assert time.monotonic() < deadline
            time.sleep(0.3)
    node_id = tray.get_runtime_context().get_node_id()
    serve = pytest.importorskip("tray.serve")

    @serve.deployment
    def ui_greeter(name: str) -> str:
        return f"hello {name}"

    handle = serve.run(ui_greeter.bind(), name="ui_app", route_prefix=None)
    assert handle.remote("ui").result(timeout_s=60) == "hello ui"
    apps = head["http"].get("/api/serve/applications/").json()["applications"]
    assert apps["ui_app"]["status"] == "RUNNING"
    assert apps["ui_app"]["deployments"]["ui_greeter"]["replica_states"] == {"RUNNING": 1}
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.goto(head["url"] + "/", timeout=60_000)
            assert "/login" in page.url  # not signed in yet
            page.fill("#token", head["token"])
            page.click("#signin")
            page.wait_for_selector("main[data-page=overview]", timeout=60_000)
            expect = {"overview": node_id, "jobs": "ui_job", "actors": "UiActor", "cluster": node_id,
                      "tasks": "ping", "logs": "worker-", "metrics": "Tasks running", "serve": "ui_greeter"}
            for name in PAGES:
                page.goto(f"{head['url']}/#/{name}")
                page.wait_for_selector(f"main[data-page={name}]", timeout=60_000)
                page.wait_for_function("(t) => document.querySelector('main').innerText.includes(t)",
                                       arg=expect[name], timeout=60_000)
                page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
            page.goto(f"{head['url']}/#/jobs")
            page.click("a[data-job=ui_job]")
            page.wait_for_function("() => (document.querySelector('#job-log') || {}).innerText"
                                   " && document.querySelector('#job-log').innerText.includes('ui job output')",
                                   timeout=60_000)
            page.screenshot(path=str(tmp_path / "job-detail.png"), full_page=True)
            page.goto(f"{head['url']}/#/actors")
            page.wait_for_selector("a[data-actor]", timeout=60_000)
            page.click("a[data-actor]")
            page.wait_for_selector("#actor-detail", timeout=60_000)
            page.screenshot(path=str(tmp_path / "actor-detail.png"), full_page=True)
        finally:
            browser.close()
            serve.shutdown()
    tray.kill(actor)
    assert head["http"].get("/api/serve/applications/").json()["applications"] == {}
    assert not errors, errors
    assert all((tmp_path / f"{name}.png").stat().st_size > 1000 for name in PAGES)
