"""Each process's routers: tasks in tray's own trio loop that send requests to replicas.

One :class:`RouterLoop` per process and cluster holds a :class:`DeploymentRouter` per
deployment that this process calls. A router knows the deployment's replicas (long-polled
from the controller, never asked per request), counts what it has in flight to each, picks
one by power of two choices and sends the call straight to the replica actor. Requests that
find every replica full wait in the router, up to ``max_queued_requests``. Handles in any
thread hand their calls to this loop; the HTTP proxy runs *in* it, so its requests cost no
thread crossing besides the actor call itself.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import tray
from tray import exceptions as rex
from tray import lowlevel

from . import _routing
from .exceptions import BackPressureError, DeploymentUnavailableError

log = logging.getLogger("tray.serve")

CONTROLLER_NAME = "SERVE_CONTROLLER_ACTOR"
SERVE_NAMESPACE = "serve"
ROUTES_KEY = ("", "__routes__")
NO_CONTROLLER_S = 10.0  # how long a new router waits for Serve's controller before failing calls
DEAD_ERRORS = (rex.RayActorError, rex.WorkerCrashedError)


def get_controller() -> Any:
    return tray.get_actor(CONTROLLER_NAME, namespace=SERVE_NAMESPACE)


class DeploymentRouter:
    """The replicas of one deployment as this process sees them, and what it has in flight."""

    def __init__(self, loop: RouterLoop, key: tuple[str, str]) -> None:
        self.loop = loop
        self.key = key
        self.version = -1
        self.replicas: dict[str, Any] = {}  # replica id -> actor handle
        self.inflight: dict[str, int] = {}
        self.max_ongoing = 5
        self.max_queued = -1
        self.exists = True
        self.autoscaling = False
        self.metrics_interval_s: float | None = None
        self.queued = 0
        self.waiters: deque[trio.Event] = deque()
        self.ready = trio.Event()
        self.rng = random.Random()
        self.model_home: dict[str, str] = {}  # multiplexed model id -> the replica that served it last
        self.ids = itertools.count()

    def update(self, snap: dict[str, Any]) -> None:
        self.version = snap["version"]
        self.exists = snap["exists"]
        self.max_ongoing = snap["max_ongoing"]
        self.max_queued = snap["max_queued"]
        self.autoscaling = snap["autoscaling"]
        self.metrics_interval_s = snap["metrics_interval_s"]
        new = dict(snap["replicas"])
        for rid in list(self.inflight):
            if rid not in new:
                del self.inflight[rid]
        for rid in new:
            self.inflight.setdefault(rid, 0)
        self.replicas = new
        self.ready.set()
        for ev in self.waiters:
            ev.set()
        self.waiters.clear()

    def load(self) -> int:
        return self.queued + sum(self.inflight.values())

    async def assign(self, model_id: str = "") -> str:
        if not self.ready.is_set():
            await self.ready.wait()
        while True:
            prefer = (self.model_home[model_id],) if model_id and model_id in self.model_home else ()
            rid = _routing.choose(self.inflight, self.max_ongoing, self.rng, prefer)
            if rid is not None:
                self.inflight[rid] += 1
                if model_id:
                    self.model_home[model_id] = rid
                return rid
            if not self.exists:
                raise DeploymentUnavailableError(f"deployment {self.key[1]!r} of application {self.key[0]!r} "
                                                 f"does not exist (deleted, or never deployed)")
            if not _routing.may_queue(self.queued, self.max_queued):
                raise BackPressureError(num_queued_requests=self.queued, max_queued_requests=self.max_queued)
            ev = trio.Event()
            self.waiters.append(ev)
            self.queued += 1
            try:
                await ev.wait()
            finally:
                self.queued -= 1

    def release(self, rid: str) -> None:
        if rid in self.inflight:
            self.inflight[rid] -= 1
        while self.waiters:
            ev = self.waiters.popleft()
            if not ev.is_set():
                ev.set()
                break

    def dead(self, rid: str) -> None:
        """A call found ``rid`` dead: stop sending to it and tell the controller."""
        if self.replicas.pop(rid, None) is not None:
            self.inflight.pop(rid, None)
            for m, r in list(self.model_home.items()):
                if r == rid:
                    del self.model_home[m]
            self.loop.tell_controller("report_dead", self.key[0], self.key[1], rid)

    async def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], meta: tuple[str, str],
                   state: Any = None) -> Any:
        """A handle call: pick a replica, send, wait for the value."""
        from ._replica import Resolved

        args, kwargs = await _resolve_responses(args, kwargs)
        rid = await self.assign(meta[1])
        try:
            replica = self.replicas[rid]
            ref = replica.handle_request.remote(meta, method, args, kwargs)
            if state is not None:
                state.ref = Resolved(ref)
                state.ref_ready.set()
            try:
                return await ref
            except DEAD_ERRORS:
                self.dead(rid)
                raise
        finally:
            self.release(rid)

    async def stream(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], meta: tuple[str, str],
                     send: trio.MemorySendChannel) -> None:
        """A streaming handle call: each item the generator yields goes into ``send``."""
        async with send:
            try:
                args, kwargs = await _resolve_responses(args, kwargs)
                rid = await self.assign(meta[1])
            except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                await send.send((False, exc))
                return
            replica = self.replicas[rid]
            sid = None
            try:
                sid = await replica.stream_start.remote(meta, method, args, kwargs)
                while True:
                    items, done = await replica.stream_pull.remote(sid)
                    for item in items:
                        await send.send((True, item))
                    if done:
                        sid = None
                        break
            except DEAD_ERRORS as exc:
                self.dead(rid)
                await send.send((False, exc))
            except Exception as exc:  # noqa: BLE001
                await send.send((False, exc))
            finally:
                if sid is not None:
                    replica.stream_cancel.remote(sid)
                self.release(rid)


async def _resolve_responses(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """DeploymentResponses among the arguments become their refs (the replica awaits them)."""
    from .handle import DeploymentResponse

    if any(isinstance(a, DeploymentResponse) for a in args):
        args = tuple([await a._state.wait_ref() if isinstance(a, DeploymentResponse) else a for a in args])
    if any(isinstance(v, DeploymentResponse) for v in kwargs.values()):
        kwargs = {k: (await v._state.wait_ref() if isinstance(v, DeploymentResponse) else v) for k, v in kwargs.items()}
    return args, kwargs


class RouterLoop:
    """The process's routing tasks and its routers (one per cluster the process joined)."""

    def __init__(self, cluster_key: tuple[str, str]) -> None:
        self.cluster_key = cluster_key
        self.routers: dict[tuple[str, str], DeploymentRouter] = {}
        self.routes: dict[str, tuple[str, str]] = {}
        self.routes_version = -1
        self.routes_ready: trio.Event | None = None
        self.router_id = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.controller: Any = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.changed: trio.Event | None = None
        self.closed = False
        self._started = threading.Event()
        self._stop: trio.Event | None = None
        # The loop is tray's own (a task in the runtime's trio loop, not a thread of its own):
        # a call sent and its reply awaited there cross no thread.
        self._ref = lowlevel.ref_of(self._main)
        if not self._started.wait(60):
            raise RuntimeError("Serve's router loop did not start in tray's runtime")

    # -- entry points from other threads

    def submit(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> concurrent.futures.Future:
        """Run ``afn(*args)`` in the loop; its outcome in a future (from any thread but the loop's)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()

        async def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(await afn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                fut.set_exception(exc)

        def start() -> None:
            self.nursery.start_soon(run)

        assert self.token is not None
        try:
            self.token.run_sync_soon(start)
        except trio.RunFinishedError:
            fut.set_exception(RuntimeError("Serve's router loop has stopped (serve.shutdown() or tray.shutdown())"))
        return fut

    def router(self, app: str, deployment: str) -> DeploymentRouter:
        """The router for a deployment (made on first use); call only in the loop."""
        key = (app, deployment)
        r = self.routers.get(key)
        if r is None:
            r = self.routers[key] = DeploymentRouter(self, key)
            self.nursery.start_soon(self._first_snapshot, r)
        return r

    def tell_controller(self, method: str, *args: Any) -> None:
        if self.controller is not None:
            try:
                getattr(self.controller, method).remote(*args)
            except Exception:  # noqa: BLE001 - best effort: the controller's own checks catch up
                pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.token is not None and self._stop is not None:
            try:
                self.token.run_sync_soon(self._stop.set)
            except trio.RunFinishedError:
                pass

    # -- the loop

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        self.changed = trio.Event()
        self.routes_ready = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self._started.set()
                nursery.start_soon(self._watch)
                nursery.start_soon(self._report)
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.closed = True

    async def _controller(self) -> Any:
        if self.controller is None:
            self.controller = await trio.to_thread.run_sync(get_controller)
        return self.controller

    async def _first_snapshot(self, r: DeploymentRouter) -> None:
        started = trio.current_time()
        while True:
            try:
                ctl = await self._controller()
                snap = await ctl.routing.remote(r.key[0], r.key[1])
                if r.version < snap["version"] or not r.ready.is_set():
                    r.update(snap)
                self._restart_listen()
                return
            except Exception:  # noqa: BLE001 - Serve not up yet, or the controller restarting
                self.controller = None
                if not r.ready.is_set() and trio.current_time() - started > NO_CONTROLLER_S:
                    # no Serve to ask: calls fail (DeploymentUnavailableError) instead of waiting forever
                    r.exists = False
                    r.ready.set()
                    for ev in r.waiters:
                        ev.set()
                await trio.sleep(0.2 if not r.ready.is_set() else 2.0)

    def _restart_listen(self) -> None:
        """A new key to watch: end the long poll in progress so the next one includes it."""
        scope = getattr(self, "_listen_scope", None)
        if scope is not None:
            scope.cancel()
        if self.changed is not None:
            self.changed.set()

    def want_routes(self) -> None:
        """This process serves HTTP: keep the route table too."""
        if self.routes_version == -1 and self.changed is not None:
            self.routes_version = -2
            self._restart_listen()

    async def _watch(self) -> None:
        """Long-poll the controller for changes to what this process routes to."""
        while True:
            known = {k: r.version for k, r in self.routers.items() if r.ready.is_set()}
            if self.routes_version != -1:
                known[ROUTES_KEY] = self.routes_version
            if not known:
                assert self.changed is not None
                await self.changed.wait()
                self.changed = trio.Event()
                continue
            try:
                ctl = await self._controller()
                self._listen_scope = trio.CancelScope(deadline=trio.current_time() + 35)
                with self._listen_scope:
                    updates = await ctl.listen.remote(known, 30.0)
                    for key, snap in updates.items():
                        if key == ROUTES_KEY:
                            self.routes = snap["routes"]
                            self.routes_version = snap["version"]
                            assert self.routes_ready is not None
                            self.routes_ready.set()
                        elif key in self.routers and snap["version"] > self.routers[key].version:
                            self.routers[key].update(snap)
            except trio.Cancelled:
                raise
            except Exception:  # noqa: BLE001 - the controller restarting: find it again
                self.controller = None
                await trio.sleep(0.3)

    async def _report(self) -> None:
        """Tell the controller how loaded this process's autoscaled deployments are."""
        last: dict[tuple[str, str], int] = {}
        while True:
            # as often as the most eager autoscaled deployment's metrics_interval_s asks
            periods = [r.metrics_interval_s for r in self.routers.values() if r.autoscaling and r.metrics_interval_s]
            await trio.sleep(max(0.05, min(periods, default=1.0)))
            loads = {k: r.load() for k, r in self.routers.items() if r.autoscaling}
            if not loads or (not any(loads.values()) and not any(last.get(k) for k in loads)):
                last = loads
                continue
            last = loads
            self.tell_controller("report_load", self.router_id, loads)


_loops: dict[tuple[str, str], RouterLoop] = {}
_lock = threading.Lock()


def _cluster_key() -> tuple[str, str]:
    info = lowlevel.runtime_info()
    return (info.address, info.job_id)


def router_loop() -> RouterLoop:
    """This process's router loop for the cluster it is connected to (started on first use)."""
    key = _cluster_key()
    loop = _loops.get(key)
    if loop is not None and not loop.closed:
        return loop
    with _lock:
        for k in [k for k in _loops if k != key]:
            _loops.pop(k).close()  # a runtime this process left: its routers are stale
        loop = _loops.get(key)
        if loop is None or loop.closed:
            loop = _loops[key] = RouterLoop(key)
        return loop


def close_all() -> None:
    with _lock:
        for k in list(_loops):
            _loops.pop(k).close()
