"""``@serve.deployment``, ``Deployment.options``, ``.bind`` and the application graph they build.

``.bind(*args)`` makes an :class:`Application`: a deployment plus its constructor arguments,
which may themselves be Applications (composition). :func:`build` flattens that graph into
the list of deployments the controller runs, each nested Application replaced by a
``DeploymentHandle`` to it, which is what the constructor receives, as in Ray.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import attrs

from tray import lowlevel

from .config import DEFAULT, DeploymentConfig


class Deployment:
    """A class or function Serve runs as replicas (Ray's ``serve.Deployment``)."""

    def __init__(self, func_or_class: Callable[..., Any], name: str, config: DeploymentConfig,
                 version: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a deployment name must be a non-empty string, got {name!r}")
        if "#" in name or "/" in name:
            raise ValueError(f"a deployment name may not contain '#' or '/', got {name!r}")
        self._func_or_class = func_or_class
        self._name = name
        self._config = config
        self._version = version

    @property
    def name(self) -> str:
        return self._name

    @property
    def func_or_class(self) -> Callable[..., Any]:
        return self._func_or_class

    @property
    def num_replicas(self) -> int | None:
        return self._config.num_replicas

    @property
    def max_ongoing_requests(self) -> int:
        return self._config.max_ongoing_requests

    @property
    def max_queued_requests(self) -> int:
        return self._config.max_queued_requests

    @property
    def user_config(self) -> Any:
        return self._config.user_config

    @property
    def ray_actor_options(self) -> dict[str, Any]:
        return dict(self._config.ray_actor_options)

    @property
    def autoscaling_config(self) -> Any:
        return self._config.autoscaling_config

    @property
    def config(self) -> DeploymentConfig:
        return self._config

    def options(self, *, func_or_class: Callable[..., Any] | None = None, name: Any = DEFAULT,
                version: Any = DEFAULT, **changes: Any) -> Deployment:
        """A copy with some options changed (the same names as ``@serve.deployment``)."""
        cfg = _config_from(self._config, changes)
        return Deployment(func_or_class or self._func_or_class, self._name if name is DEFAULT else name, cfg,
                          self._version if version is DEFAULT else version)

    def bind(self, *args: Any, **kwargs: Any) -> Application:
        """This deployment with its constructor arguments: an application to ``serve.run``."""
        return Application(self, args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Deployments cannot be constructed directly; use .bind() and serve.run()")

    def __repr__(self) -> str:
        return f"Deployment(name={self._name})"


_OPTION_NAMES = {
    "num_replicas", "ray_actor_options", "max_ongoing_requests", "max_queued_requests", "autoscaling_config",
    "user_config", "health_check_period_s", "health_check_timeout_s", "graceful_shutdown_timeout_s",
}


def _config_from(base: DeploymentConfig | None, changes: dict[str, Any]) -> DeploymentConfig:
    unknown = set(changes) - _OPTION_NAMES - {"route_prefix", "is_driver_deployment", "logging_config",
                                               "placement_group_bundles", "placement_group_strategy",
                                               "max_replicas_per_node", "graceful_shutdown_wait_loop_s"}
    if unknown:
        raise TypeError(f"unknown deployment options: {sorted(unknown)}")
    unsupported = {k for k in changes if k not in _OPTION_NAMES and changes[k] is not DEFAULT and
                   changes[k] is not None}
    if unsupported:
        raise ValueError(f"tray.serve does not support the deployment options {sorted(unsupported)}")
    given = {k: v for k, v in changes.items() if k in _OPTION_NAMES and v is not DEFAULT}
    return DeploymentConfig.build(base, **given)


def deployment(_func_or_class: Callable[..., Any] | None = None, *, name: Any = DEFAULT, **options: Any) -> Any:
    """``@serve.deployment`` or ``@serve.deployment(name=..., num_replicas=..., ...)``."""

    def wrap(target: Callable[..., Any]) -> Deployment:
        if not (inspect.isclass(target) or inspect.isfunction(target) or callable(target)):
            raise TypeError(f"@serve.deployment applies to a class or a function, not {type(target).__name__}")
        return Deployment(target, target.__name__ if name is DEFAULT else name, _config_from(None, options))

    if _func_or_class is not None:
        return wrap(_func_or_class)
    return wrap


@attrs.define
class Application:
    """A bound deployment: what ``serve.run`` deploys (Ray's ``serve.Application``)."""

    deployment: Deployment
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@attrs.frozen
class HandleMarker:
    """Stands for a ``DeploymentHandle`` in a constructor's arguments until the replica builds it."""

    deployment_name: str


@attrs.frozen
class DeploymentSpec:
    """One deployment of an application, as the controller keeps it (all picklable)."""

    name: str
    code: bytes  # the pickled class or function
    init_args: bytes  # the pickled (args, kwargs), with HandleMarkers for nested applications
    config: DeploymentConfig
    version: str
    is_function: bool
    ingress: bool


def build(app: Application) -> list[DeploymentSpec]:
    """Flatten ``app`` into its deployments, the ingress (``app``'s own) last."""
    if not isinstance(app, Application):
        raise TypeError(f"serve.run() expects an Application (a deployment with .bind(...)), got {type(app).__name__}")
    specs: dict[str, DeploymentSpec] = {}
    seen: dict[int, str] = {}

    def visit(a: Application, ingress: bool) -> str:
        if id(a) in seen:
            return seen[id(a)]
        name = a.deployment.name
        if name in specs:
            n = 1
            while f"{name}_{n}" in specs:
                n += 1
            name = f"{name}_{n}"
        specs[name] = None  # type: ignore[assignment]  # reserve the name before the children take theirs
        seen[id(a)] = name

        def sub(v: Any) -> Any:
            if isinstance(v, Application):
                return HandleMarker(visit(v, False))
            if isinstance(v, list):
                return [sub(x) for x in v]
            if isinstance(v, tuple):
                return tuple(sub(x) for x in v)
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            return v

        args = tuple(sub(v) for v in a.args)
        kwargs = {k: sub(v) for k, v in a.kwargs.items()}
        dep = a.deployment
        code = lowlevel.dumps(dep.func_or_class)
        init_args = lowlevel.dumps((args, kwargs))
        cfg = dep.config
        version = dep._version or hashlib.sha1(
            code + init_args + repr(sorted(cfg.ray_actor_options.items())).encode()).hexdigest()[:16]
        specs[name] = DeploymentSpec(name=name, code=code, init_args=init_args, config=cfg, version=version,
                                     is_function=not inspect.isclass(dep.func_or_class), ingress=ingress)
        return name

    ingress_name = visit(app, True)
    ordered = [s for n, s in specs.items() if n != ingress_name] + [specs[ingress_name]]
    return ordered
