"""The Serve controller: a detached, restartable actor that makes what runs match what was asked.

It keeps the applications (their deployment specs and targets), starts, watches, checks and
stops replica actors, runs the autoscaling policy on the load the routers report, and answers
routers' long polls with routing snapshots. Its decisions come from the pure modules
(``_targets``, ``_autoscale``); this class is the shell that carries them out. Everything it
must not forget (applications, targets, replica names, HTTP options) is written to the
cluster's KV table, so a restarted controller (``max_restarts=-1``) takes its replicas back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from typing import Any

import attrs

import tray
from tray import lowlevel
from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from . import _autoscale, _targets
from ._router import DEAD_ERRORS, ROUTES_KEY, SERVE_NAMESPACE
from .config import HTTPOptions
from .deployment import DeploymentSpec

log = logging.getLogger("tray.serve")

TICK_S = 0.1
KV_KEY = "serve:controller_state"
PROXY_NAME = "SERVE_PROXY_ACTOR"
REPLICA_CONCURRENCY = 100_000


@attrs.define(eq=False)
class Replica:
    rid: str
    handle: Any
    state: str
    version: str
    seq: int
    last_health: float = 0.0
    task: Any = None


@attrs.define(eq=False)
class Dep:
    spec: DeploymentSpec
    target: int
    replicas: dict[str, Replica] = attrs.Factory(dict)
    user_config: Any = None
    failed: bool = False
    fail_count: int = 0
    message: str = ""
    healthy_once: bool = False
    counter: int = 0
    scaling: str | None = None
    deleting: bool = False


@attrs.define(eq=False)
class App:
    name: str
    route_prefix: str | None
    ingress: str
    deps: dict[str, Dep] = attrs.Factory(dict)
    deleting: bool = False
    message: str = ""
    last_deployed: float = attrs.Factory(time.time)


async def _gone(handle: Any, timeout_s: float = 10.0) -> None:
    """Wait until a killed actor's calls fail (its process is gone), up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(handle.alive.remote(), 1.0)
        except TimeoutError:
            continue
        except Exception:  # noqa: BLE001 - dead: what we wait for
            return
        await asyncio.sleep(0.05)


def replica_actor_name(app: str, dep: str, rid: str) -> str:
    return f"SERVE_REPLICA::{app}#{dep}#{rid}"


class ServeController:
    def __init__(self, http_options: dict[str, Any] | None = None) -> None:
        self.apps: dict[str, App] = {}
        self.http = HTTPOptions.coerce(http_options)
        self.http_wanted = http_options is not None
        self.proxy: Any = None
        self.proxy_port: int | None = None
        self.gen = itertools.count(1)
        self.key_versions: dict[tuple[str, str], int] = {}
        self.changed = asyncio.Event()
        self.loads: dict[tuple[str, str], dict[str, deque[tuple[float, float]]]] = {}
        self.seq = itertools.count()
        self.dirty = False
        self.stopping = False
        self.bump(ROUTES_KEY)
        self._recover()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._persist())]

    # ------------------------------------------------------------------ state

    def bump(self, key: tuple[str, str]) -> None:
        self.key_versions[key] = next(self.gen)
        self.changed.set()
        self.changed = asyncio.Event()

    def _save_state(self) -> bytes:
        apps = {}
        for a in self.apps.values():
            apps[a.name] = {
                "route_prefix": a.route_prefix, "ingress": a.ingress, "deleting": a.deleting,
                "deps": {n: {"spec": d.spec, "target": d.target, "user_config": d.user_config, "failed": d.failed,
                             "message": d.message, "healthy_once": d.healthy_once, "deleting": d.deleting,
                             "replicas": [(r.rid, r.version, r.seq) for r in d.replicas.values()
                                          if r.state == _targets.RUNNING]}
                         for n, d in a.deps.items()},
            }
        return lowlevel.dumps({"apps": apps, "http": attrs.asdict(self.http) if self.http_wanted else None})

    def _recover(self) -> None:
        try:
            blob = lowlevel.kv_get(KV_KEY, namespace=SERVE_NAMESPACE)
        except Exception:  # noqa: BLE001
            log.exception("serve controller: reading its saved state failed")
            return
        if blob is None:
            return
        state = lowlevel.loads(blob)
        if state.get("http") is not None:
            self.http = HTTPOptions.coerce(state["http"])
            self.http_wanted = True
        for name, a in state["apps"].items():
            app = self.apps[name] = App(name, a["route_prefix"], a["ingress"], deleting=a["deleting"])
            for dn, d in a["deps"].items():
                dep = app.deps[dn] = Dep(d["spec"], d["target"], user_config=d["user_config"], failed=d["failed"],
                                         message=d["message"], healthy_once=d["healthy_once"], deleting=d["deleting"])
                for rid, version, seq in d["replicas"]:
                    try:
                        handle = tray.get_actor(replica_actor_name(name, dn, rid), namespace=SERVE_NAMESPACE)
                    except Exception:  # noqa: BLE001 - it died while no controller watched: replaced
                        continue
                    # not trusted until it answers: STARTING, adopted by _adopt
                    rep = dep.replicas[rid] = Replica(rid, handle, _targets.STARTING, version, seq)
                    rep.task = asyncio.get_running_loop().create_task(self._adopt(name, dep, rep))
                self.bump((name, dn))
        self.bump(ROUTES_KEY)
        if self.http_wanted:
            try:
                self.proxy = tray.get_actor(PROXY_NAME, namespace=SERVE_NAMESPACE)
            except Exception:  # noqa: BLE001
                self.proxy = None

    async def _persist(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.dirty:
                self.dirty = False
                blob = self._save_state()
                try:
                    await asyncio.to_thread(lowlevel.kv_put, KV_KEY, blob, namespace=SERVE_NAMESPACE)
                except Exception:  # noqa: BLE001
                    log.exception("serve controller: saving its state failed")
                    self.dirty = True

    # ------------------------------------------------------------------ API (from serve.* in drivers)

    async def ping(self) -> int:
        return os.getpid()

    async def start_http(self, http_options: dict[str, Any] | None) -> int:
        """Start the HTTP proxy (once); the port it listens on."""
        if http_options is not None and not self.http_wanted:
            self.http = HTTPOptions.coerce(http_options)
        self.http_wanted = True
        self.dirty = True
        return await self._ensure_proxy()

    async def _ensure_proxy(self) -> int:
        from ._proxy import ServeProxy

        if self.proxy is not None:
            try:
                self.proxy_port = await self.proxy.ready.remote()
                return self.proxy_port
            except DEAD_ERRORS:
                self.proxy = None
        here = NodeAffinitySchedulingStrategy(tray.get_runtime_context().get_node_id(), soft=True)
        self.proxy = tray.remote(ServeProxy).options(  # beside the controller, on the head (Ray: a proxy per node)
            name=PROXY_NAME, namespace=SERVE_NAMESPACE, lifetime="detached", num_cpus=0, max_concurrency=1000,
            scheduling_strategy=here,
        ).remote(attrs.asdict(self.http))
        try:
            self.proxy_port = await self.proxy.ready.remote()
        except Exception:
            tray.kill(self.proxy)
            self.proxy = None
            raise
        return self.proxy_port

    async def deploy_application(self, name: str, route_prefix: str | None, specs: list[DeploymentSpec]) -> None:
        """Make application ``name`` run ``specs`` (the ingress last): new deployments start,
        changed code rolls, a changed user_config is applied in place, dropped ones stop."""
        if route_prefix is not None:
            for other in self.apps.values():
                if other.name != name and other.route_prefix == route_prefix and not other.deleting:
                    raise ValueError(f"route_prefix {route_prefix!r} is already used by application {other.name!r}")
        app = self.apps.get(name)
        if app is None or app.deleting:
            if app is not None:  # a deletion in progress: its replicas still stop
                for d in app.deps.values():
                    for r in d.replicas.values():
                        self._stop_replica(app, d, r)
            app = self.apps[name] = App(name, route_prefix, specs[-1].name)
        app.route_prefix = route_prefix
        app.ingress = specs[-1].name
        app.last_deployed = time.time()
        app.message = ""
        wanted = {s.name for s in specs}
        for spec in specs:
            dep = app.deps.get(spec.name)
            target = spec.config.initial_replicas()
            if dep is None or dep.deleting:
                app.deps[spec.name] = Dep(spec, target, user_config=spec.config.user_config)
            else:
                autoscaled = spec.config.autoscaling_config is not None
                keep_target = autoscaled and dep.spec.config.autoscaling_config is not None
                if dep.spec.version != spec.version:
                    dep.failed, dep.fail_count, dep.message, dep.healthy_once = False, 0, "", False
                dep.spec = spec
                if not keep_target:
                    dep.target = target
                else:
                    cfg = spec.config.autoscaling_config
                    assert cfg is not None
                    dep.target = max(cfg.min_replicas, min(cfg.max_replicas, dep.target))
                if spec.config.user_config != dep.user_config:
                    dep.user_config = spec.config.user_config
                    await self._reconfigure(dep)
            self.bump((name, spec.name))
        for dn, dep in app.deps.items():
            if dn not in wanted:
                dep.deleting = True
                dep.target = 0
        self.bump(ROUTES_KEY)
        self.dirty = True
        self.changed.set()

    async def _reconfigure(self, dep: Dep) -> None:
        running = [r for r in dep.replicas.values() if r.state == _targets.RUNNING]
        results = await asyncio.gather(*[r.handle.reconfigure.remote(dep.user_config) for r in running],
                                       return_exceptions=True)
        for r, res in zip(running, results, strict=True):
            if isinstance(res, BaseException):
                dep.message = f"reconfigure failed on replica {r.rid}: {res}"

    async def delete_application(self, name: str) -> bool:
        app = self.apps.get(name)
        if app is None:
            return False
        app.deleting = True
        for dep in app.deps.values():
            dep.deleting = True
            dep.target = 0
            self.bump((name, dep.spec.name))
        self.bump(ROUTES_KEY)
        self.dirty = True
        return True

    async def shutdown(self) -> None:
        """Stop every replica and the proxy, forget everything (serve.shutdown)."""
        self.stopping = True
        for t in self._tasks:
            t.cancel()
        handles = [r.handle for app in self.apps.values() for dep in app.deps.values() for r in dep.replicas.values()]
        if self.proxy is not None:
            try:
                await asyncio.wait_for(self.proxy.stop.remote(), 5)
            except Exception:  # noqa: BLE001
                pass
            handles.append(self.proxy)
        for h in handles:
            try:
                tray.kill(h)
            except Exception:  # noqa: BLE001
                pass
        # as Ray's serve.shutdown(): return once they are gone, not merely told to go
        await asyncio.gather(*[_gone(h) for h in handles])
        self.apps.clear()
        await asyncio.to_thread(lowlevel.kv_del, KV_KEY, namespace=SERVE_NAMESPACE)

    async def app_exists(self, name: str) -> bool:
        return name in self.apps and not self.apps[name].deleting

    async def ingress_of(self, name: str) -> str | None:
        app = self.apps.get(name)
        return None if app is None or app.deleting else app.ingress

    async def deployment_exists(self, app_name: str, dep: str) -> bool:
        app = self.apps.get(app_name)
        return app is not None and dep in app.deps

    async def status(self) -> dict[str, Any]:
        """Applications, their deployments and replica states (plain data; serve.status() wraps it)."""
        out: dict[str, Any] = {"proxy": {"port": self.proxy_port, "host": self.http.host}
                               if self.proxy is not None else None, "applications": {}}
        for app in self.apps.values():
            deps = {}
            for dn, d in app.deps.items():
                facts = self._facts(d)
                st = _targets.status(d.target, d.spec.version, facts, d.failed, d.healthy_once, d.scaling)
                counts: dict[str, int] = {}
                for r in d.replicas.values():
                    counts[r.state] = counts.get(r.state, 0) + 1
                deps[dn] = {"status": st, "message": d.message, "replica_states": counts, "target": d.target}
            statuses = {dn: str(v["status"]) for dn, v in deps.items()}
            ast = _targets.app_status(statuses, app.deleting)
            msg = app.message or "; ".join(f"{dn}: {v['message']}" for dn, v in deps.items()
                                           if v["status"] == "DEPLOY_FAILED" and v["message"])
            out["applications"][app.name] = {"status": ast, "message": msg, "route_prefix": app.route_prefix,
                                             "ingress": app.ingress, "deployments": deps,
                                             "last_deployed_time_s": app.last_deployed}
        return out

    # ------------------------------------------------------------------ routers

    def _snapshot(self, key: tuple[str, str]) -> dict[str, Any]:
        version = self.key_versions.get(key, 0)
        if key == ROUTES_KEY:
            routes = {a.route_prefix: (a.name, a.ingress) for a in self.apps.values()
                      if a.route_prefix is not None and not a.deleting}
            return {"version": version, "routes": routes}
        app = self.apps.get(key[0])
        dep = app.deps.get(key[1]) if app is not None else None
        if dep is None:
            return {"version": version, "exists": False, "replicas": [], "max_ongoing": 5, "max_queued": -1,
                    "autoscaling": False, "metrics_interval_s": None}
        cfg = dep.spec.config
        return {"version": version, "exists": not dep.deleting,
                "replicas": [(r.rid, r.handle) for r in dep.replicas.values() if r.state == _targets.RUNNING],
                "max_ongoing": cfg.max_ongoing_requests, "max_queued": cfg.max_queued_requests,
                "autoscaling": cfg.autoscaling_config is not None,
                "metrics_interval_s": cfg.autoscaling_config.metrics_interval_s if cfg.autoscaling_config else None}

    async def routing(self, app: str, dep: str) -> dict[str, Any]:
        return self._snapshot((app, dep))

    async def listen(self, known: dict[tuple[str, str], int], timeout_s: float) -> dict[tuple[str, str], Any]:
        """Long poll: the snapshots of the keys whose version moved past ``known`` (waiting up to
        ``timeout_s`` for one to)."""
        deadline = time.monotonic() + timeout_s
        while True:
            changed = {k: self._snapshot(k) for k, v in known.items() if self.key_versions.get(k, 0) != v}
            if changed:
                return changed
            left = deadline - time.monotonic()
            if left <= 0:
                return {}
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return {}

    async def report_load(self, router_id: str, loads: dict[tuple[str, str], int]) -> None:
        now = time.monotonic()
        for key, load in loads.items():
            series = self.loads.setdefault(key, {}).setdefault(router_id, deque(maxlen=4096))
            series.append((now, float(load)))

    async def report_dead(self, app_name: str, dep_name: str, rid: str) -> None:
        """A router's call found a replica dead: check it now instead of at the next health check."""
        app = self.apps.get(app_name)
        dep = app.deps.get(dep_name) if app else None
        rep = dep.replicas.get(rid) if dep else None
        if app is None or dep is None or rep is None or rep.state != _targets.RUNNING:
            return
        try:
            await asyncio.wait_for(rep.handle.num_ongoing.remote(), 5)
        except Exception:  # noqa: BLE001
            self._lost(app, dep, rep, "its process died")

    # ------------------------------------------------------------------ reconciling

    def _facts(self, dep: Dep) -> dict[str, _targets.ReplicaFact]:
        return {r.rid: _targets.ReplicaFact(r.state, r.version, r.seq) for r in dep.replicas.values()}

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # noqa: BLE001 - one bad tick must not stop the control loop
                log.exception("serve controller tick failed")
            await asyncio.sleep(TICK_S)

    async def _tick(self) -> None:
        if self.http_wanted and self.proxy is None:
            try:
                await self._ensure_proxy()
            except Exception:  # noqa: BLE001
                log.exception("serve: starting the HTTP proxy failed")
        now = time.monotonic()
        for app in list(self.apps.values()):
            for dep in list(app.deps.values()):
                self._autoscale(app, dep, now)
                plan = _targets.plan(dep.target, dep.spec.version, self._facts(dep), dep.failed)
                for _ in range(plan.start):
                    self._start_replica(app, dep)
                for rid in plan.stop:
                    self._stop_replica(app, dep, dep.replicas[rid])
                self._health(app, dep, now)
                st = _targets.status(dep.target, dep.spec.version, self._facts(dep), dep.failed, dep.healthy_once,
                                     dep.scaling)
                if st == "HEALTHY":
                    if not dep.healthy_once:
                        dep.healthy_once = True
                        self.dirty = True
                    dep.scaling = None
                if dep.deleting and not dep.replicas:
                    del app.deps[dep.spec.name]
                    self.loads.pop((app.name, dep.spec.name), None)
                    self.bump((app.name, dep.spec.name))
                    self.dirty = True
            if app.deleting and not app.deps:
                del self.apps[app.name]
                self.bump(ROUTES_KEY)
                self.dirty = True

    def _autoscale(self, app: App, dep: Dep, now: float) -> None:
        cfg = dep.spec.config.autoscaling_config
        if cfg is None or dep.deleting or dep.failed:
            return
        samples = self.loads.get((app.name, dep.spec.name), {})
        horizon = max(cfg.look_back_period_s * 2, 30.0)
        for rid in [r for r, s in samples.items() if s and s[-1][0] < now - horizon]:
            del samples[rid]
        total = _autoscale.average_load(samples, now, cfg.look_back_period_s)
        running = sum(1 for r in dep.replicas.values() if r.state == _targets.RUNNING and
                      r.version == dep.spec.version)
        d = _autoscale.decide(cfg, total, running, dep.target, dep.counter, TICK_S)
        dep.counter = d.counter
        if d.target != dep.target:
            dep.scaling = "up" if d.target > dep.target else "down"
            log.info("serve: %s/%s autoscaling %d -> %d replicas (load %.1f)", app.name, dep.spec.name, dep.target,
                     d.target, total)
            dep.target = d.target
            self.dirty = True

    def _start_replica(self, app: App, dep: Dep) -> None:
        from ._replica import ServeReplica

        rid = os.urandom(4).hex()
        spec = dep.spec
        opts = dict(spec.config.ray_actor_options)
        opts.setdefault("num_cpus", 1 if "num_cpus" not in opts else opts["num_cpus"])
        handle = tray.remote(ServeReplica).options(
            name=replica_actor_name(app.name, spec.name, rid), namespace=SERVE_NAMESPACE, lifetime="detached",
            max_concurrency=REPLICA_CONCURRENCY, **opts,
        ).remote(app.name, spec, rid)
        rep = dep.replicas[rid] = Replica(rid, handle, _targets.STARTING, spec.version, next(self.seq))
        rep.task = asyncio.get_running_loop().create_task(self._init_replica(app, dep, rep))

    async def _init_replica(self, app: App, dep: Dep, rep: Replica) -> None:
        try:
            await rep.handle.initialize.remote(dep.user_config)
        except Exception as exc:  # noqa: BLE001 - the constructor failed: counted, maybe DEPLOY_FAILED
            dep.replicas.pop(rep.rid, None)
            try:
                tray.kill(rep.handle)
            except Exception:  # noqa: BLE001
                pass
            if rep.version == dep.spec.version:
                dep.fail_count += 1
                dep.message = f"replica failed to start: {type(exc).__name__}: {exc}"
                if dep.fail_count >= _targets.MAX_CONSTRUCTOR_FAILURES:
                    dep.failed = True
                    self.dirty = True
            return
        if dep.replicas.get(rep.rid) is not rep:
            return
        dep.fail_count = 0
        rep.state = _targets.RUNNING
        rep.last_health = time.monotonic()
        self.bump((app.name, dep.spec.name))
        self.dirty = True
        asyncio.get_running_loop().create_task(self._watch(app, dep, rep))

    async def _adopt(self, app_name: str, dep: Dep, rep: Replica) -> None:
        """A replica from before a controller restart: serve with it if it still answers."""
        try:
            await asyncio.wait_for(rep.handle.num_ongoing.remote(), 10)
        except Exception:  # noqa: BLE001
            dep.replicas.pop(rep.rid, None)
            return
        rep.state = _targets.RUNNING
        rep.last_health = time.monotonic()
        self.bump((app_name, dep.spec.name))
        app = self.apps.get(app_name)
        if app is not None:
            asyncio.get_running_loop().create_task(self._watch(app, dep, rep))

    async def _watch(self, app: App, dep: Dep, rep: Replica) -> None:
        try:
            await rep.handle.watch.remote()
        except Exception:  # noqa: BLE001 - the process is gone
            pass
        self._lost(app, dep, rep, "its process died")

    def _lost(self, app: App, dep: Dep, rep: Replica, why: str) -> None:
        if dep.replicas.get(rep.rid) is rep and rep.state != _targets.STOPPING and not self.stopping:
            del dep.replicas[rep.rid]
            log.warning("serve: replica %s of %s/%s is gone (%s); replacing it", rep.rid, app.name, dep.spec.name, why)
            try:
                tray.kill(rep.handle)
            except Exception:  # noqa: BLE001
                pass
            self.bump((app.name, dep.spec.name))
            self.dirty = True

    def _health(self, app: App, dep: Dep, now: float) -> None:
        cfg = dep.spec.config
        for rep in list(dep.replicas.values()):
            if rep.state == _targets.RUNNING and now - rep.last_health >= cfg.health_check_period_s:
                rep.last_health = now + cfg.health_check_timeout_s  # no second check while this one runs
                asyncio.get_running_loop().create_task(self._check(app, dep, rep))

    async def _check(self, app: App, dep: Dep, rep: Replica) -> None:
        cfg = dep.spec.config
        try:
            await asyncio.wait_for(rep.handle.check_health.remote(), cfg.health_check_timeout_s)
        except Exception as exc:  # noqa: BLE001
            dep.message = f"replica {rep.rid} failed its health check: {type(exc).__name__}: {exc}"
            self._lost(app, dep, rep, "its health check failed")
            return
        rep.last_health = time.monotonic()

    def _stop_replica(self, app: App, dep: Dep, rep: Replica) -> None:
        if rep.state == _targets.STOPPING:
            return
        was_running = rep.state == _targets.RUNNING
        rep.state = _targets.STOPPING
        if rep.task is not None and not rep.task.done():
            rep.task.cancel()
        self.bump((app.name, dep.spec.name))
        self.dirty = True
        timeout = dep.spec.config.graceful_shutdown_timeout_s
        asyncio.get_running_loop().create_task(self._stop(dep, rep, timeout if was_running else 0.0))

    async def _stop(self, dep: Dep, rep: Replica, timeout: float) -> None:
        if timeout > 0:
            try:
                await asyncio.wait_for(rep.handle.prepare_shutdown.remote(timeout), timeout + 2)
            except Exception:  # noqa: BLE001
                pass
        try:
            tray.kill(rep.handle)
        except Exception:  # noqa: BLE001
            pass
        if dep.replicas.get(rep.rid) is rep:
            del dep.replicas[rep.rid]
            self.changed.set()
