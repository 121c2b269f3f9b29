"""The driver's face of Serve: start, run, status, delete, shutdown, handles by name."""

from __future__ import annotations

import time
from typing import Any

import tray

from . import _router
from ._router import CONTROLLER_NAME, SERVE_NAMESPACE, get_controller
from .config import DEFAULT, HTTPOptions, check_route_prefix, not_serve_running
from .deployment import Application, build
from .handle import DeploymentHandle
from .schema import ServeStatus, from_controller


def _find_controller() -> Any | None:
    try:
        return get_controller()
    except ValueError:
        return None


def _on_the_head() -> Any:
    """Where Ray puts Serve's controller: on the head node (a zero-CPU actor would otherwise go
    to a random node, Ray's default for such actors); soft, should the head be unknown."""
    from tray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    heads = [n["NodeID"] for n in tray.nodes() if n.get("IsHead") and n.get("Alive")]
    return NodeAffinitySchedulingStrategy(heads[0], soft=True) if heads else None


def _get_or_create_controller(http_options: dict[str, Any] | None = None) -> Any:
    from ._controller import ServeController

    ctl = _find_controller()
    if ctl is None:
        try:
            ctl = tray.remote(ServeController).options(
                name=CONTROLLER_NAME, namespace=SERVE_NAMESPACE, lifetime="detached", max_restarts=-1,
                max_concurrency=10_000, num_cpus=0, scheduling_strategy=_on_the_head(),
            ).remote(http_options)
        except ValueError:  # another driver made it first
            ctl = get_controller()
    tray.get(ctl.ping.remote(), timeout=120)
    return ctl


def start(http_options: HTTPOptions | dict[str, Any] | None = None, *, detached: bool = True) -> None:
    """Start Serve (the controller) and its HTTP proxy; ``http_options``: host, port, root_path,
    request_timeout_s, keep_alive_timeout_s, server. ``detached`` is accepted for old callers
    and, as in Ray 2.x, Serve always outlives the driver that started it on a cluster."""
    opts = None
    if http_options is not None:
        import attrs

        opts = attrs.asdict(HTTPOptions.coerce(http_options))
    ctl = _get_or_create_controller(opts)
    tray.get(ctl.start_http.remote(opts), timeout=120)


def run(target: Application, *, name: str = "default", route_prefix: Any = DEFAULT,
        blocking: bool = False) -> DeploymentHandle:
    """Deploy ``target`` as application ``name`` and wait until it runs; its ingress's handle.
    ``blocking=True`` then waits until Ctrl-C."""
    if route_prefix is DEFAULT:
        route_prefix = "/"
    check_route_prefix(route_prefix)
    if not isinstance(name, str) or not name:
        raise ValueError(f"an application name must be a non-empty string, got {name!r}")
    specs = build(target)
    ctl = _get_or_create_controller()
    if route_prefix is not None:
        tray.get(ctl.start_http.remote(None), timeout=120)
    tray.get(ctl.deploy_application.remote(name, route_prefix, specs))
    _wait_running(ctl, name)
    handle = DeploymentHandle(specs[-1].name, name)
    if blocking:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return handle


def _wait_running(ctl: Any, name: str, timeout_s: float | None = None) -> None:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        raw = tray.get(ctl.status.remote())
        app = raw["applications"].get(name)
        if app is not None:
            if app["status"] == "RUNNING":
                return
            if app["status"] == "DEPLOY_FAILED":
                raise RuntimeError(f"Deploying application {name} failed: {app['message']}")
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"application {name} did not become RUNNING within {timeout_s} s")
        time.sleep(0.05)


def status() -> ServeStatus:
    """Applications, their deployments and replica states (empty when Serve is not running)."""
    ctl = _find_controller()
    if ctl is None:
        return ServeStatus()
    return from_controller(tray.get(ctl.status.remote()))


def delete(name: str, _blocking: bool = True) -> None:
    """Delete application ``name`` (its replicas stop); waits until they are gone."""
    ctl = _find_controller()
    if ctl is None:
        raise not_serve_running()
    tray.get(ctl.delete_application.remote(name))
    while _blocking:
        raw = tray.get(ctl.status.remote())
        if name not in raw["applications"]:
            return
        time.sleep(0.05)


def shutdown() -> None:
    """Stop Serve: every application, the proxy and the controller."""
    _router.close_all()
    if not tray.is_initialized():
        return
    ctl = _find_controller()
    if ctl is None:
        return
    try:
        tray.get(ctl.shutdown.remote(), timeout=60)
    finally:
        tray.kill(ctl)


def get_app_handle(name: str) -> DeploymentHandle:
    """The ingress handle of application ``name`` (RayServeException if it does not exist)."""
    from .exceptions import RayServeException

    ctl = _find_controller()
    if ctl is None:
        raise not_serve_running()
    ingress = tray.get(ctl.ingress_of.remote(name))
    if ingress is None:
        raise RayServeException(f"Application '{name}' does not exist.")
    return DeploymentHandle(ingress, name)


def get_deployment_handle(deployment_name: str, app_name: str | None = None) -> DeploymentHandle:
    """A handle to ``deployment_name`` of ``app_name`` (default: the current replica's app, else "default")."""
    from . import context
    from .exceptions import RayServeException

    if app_name is None:
        app_name = context._replica.app_name if context._replica is not None else "default"
    ctl = _find_controller()
    if ctl is None:
        raise not_serve_running()
    if not tray.get(ctl.deployment_exists.remote(app_name, deployment_name)):
        raise RayServeException(f"Deployment '{deployment_name}' in application '{app_name}' does not exist.")
    return DeploymentHandle(deployment_name, app_name)
