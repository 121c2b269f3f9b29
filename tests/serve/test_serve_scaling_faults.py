"""Autoscaling up and down, replicas killed under load, health checks, a restarted controller."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
from serve_helpers import wait_for

import tray
from tray import serve


def _running(app: str, dep: str) -> int:
    st = serve.status().applications.get(app)
    if st is None or dep not in st.deployments:
        return 0
    return st.deployments[dep].replica_states.get("RUNNING", 0)


def test_autoscaling_up_under_load_and_down_after(env) -> None:
    @serve.deployment(
        max_ongoing_requests=10, ray_actor_options={"num_cpus": 0},
        autoscaling_config={"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 1,
                            "upscale_delay_s": 0.5, "downscale_delay_s": 1.0, "metrics_interval_s": 0.2,
                            "look_back_period_s": 1.0},
    )
    class Sleepy:
        async def __call__(self, s: float) -> int:
            import asyncio

            await asyncio.sleep(s)
            return os.getpid()

    h = serve.run(Sleepy.bind(), name="auto", route_prefix=None)
    assert _running("auto", "Sleepy") == 1
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            rs = [h.remote(0.3) for _ in range(6)]
            for r in rs:
                r.result(timeout_s=60)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_for(lambda: _running("auto", "Sleepy") >= 3, timeout=60, what="scale up to 3 replicas")
    finally:
        stop.set()
        t.join()
    wait_for(lambda: _running("auto", "Sleepy") == 1 and
             sum(serve.status().applications["auto"].deployments["Sleepy"].replica_states.values()) == 1,
             timeout=60, what="scale back down to 1 replica")


def test_killed_replica_is_replaced_while_requests_continue(env) -> None:
    @serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0}, graceful_shutdown_timeout_s=0)
    class Pid:
        def __call__(self, request) -> str:
            return str(os.getpid())

    serve.run(Pid.bind(), name="pid", route_prefix="/pid")
    url = f"{env.url}/pid"
    with httpx.Client(timeout=30) as c:
        pids = {c.get(url).text for _ in range(40)}
        assert len(pids) == 2
        victim = int(sorted(pids)[0])
        os.kill(victim, signal.SIGKILL)
        ok = failed = 0
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = c.get(url)
            if r.status_code == 200:
                ok += 1
                seen.add(r.text)
            else:
                assert r.status_code in (500, 503), r.status_code
                failed += 1
            if len(seen - pids) >= 1 and ok > 50:
                break
        assert failed <= 5, f"{failed} requests failed after the kill"
        assert str(victim) not in seen or ok > 0
        assert len(seen - pids) >= 1, "no replacement replica served a request"
    wait_for(lambda: _running("pid", "Pid") == 2, what="2 replicas running again")


def test_failed_health_check_replaces_replica(env) -> None:
    @serve.deployment(health_check_period_s=0.2, health_check_timeout_s=5, ray_actor_options={"num_cpus": 0},
                      graceful_shutdown_timeout_s=0)
    class Fragile:
        def __init__(self) -> None:
            self.sick = False

        def make_sick(self) -> int:
            self.sick = True
            return os.getpid()

        def check_health(self) -> None:
            if self.sick:
                raise RuntimeError("sick")

        def pid(self) -> int:
            return os.getpid()

    h = serve.run(Fragile.bind(), name="fragile", route_prefix=None)
    old = h.make_sick.remote().result()

    def new_pid() -> bool:
        try:
            return h.pid.remote().result(timeout_s=10) != old
        except Exception:  # noqa: BLE001 - the sick replica going away
            return False

    wait_for(new_pid, timeout=60, what="a healthy replacement")


def test_controller_restart_recovers_state(env) -> None:
    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Steady:
        def __call__(self, request) -> str:
            return str(os.getpid())

    serve.run(Steady.bind(), name="steady", route_prefix="/steady")
    pid_before = httpx.get(f"{env.url}/steady", timeout=30).text
    ctl = tray.get_actor("SERVE_CONTROLLER_ACTOR", namespace="serve")
    ctl_pid = tray.get(ctl.ping.remote())
    os.kill(ctl_pid, signal.SIGKILL)

    def recovered() -> bool:
        try:
            return tray.get(ctl.ping.remote(), timeout=10) != ctl_pid
        except Exception:  # noqa: BLE001 - restarting
            return False

    wait_for(recovered, timeout=60, what="the controller to restart")
    wait_for(lambda: serve.status().applications.get("steady") is not None and
             serve.status().applications["steady"].status == "RUNNING", what="the app RUNNING after recovery")
    # the same replica (adopted, not restarted) still serves, through the same proxy
    assert httpx.get(f"{env.url}/steady", timeout=30).text == pid_before
