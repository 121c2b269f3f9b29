"""Validated configuration records: a deployment's options, autoscaling, HTTP options.

Each is a frozen record checked on construction, so bad input fails where the user wrote it
(``@serve.deployment(num_replicas=-1)``), not inside a replica later.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .exceptions import RayServeException

DEFAULT_MAX_ONGOING_REQUESTS = 5  # Ray 2.60's default


def _nonneg(name: str, v: float | int | None, *, allow_none: bool = False) -> None:
    if v is None and allow_none:
        return
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(f"{name} must be a number >= 0, got {v!r}")


@attrs.frozen
class AutoscalingConfig:
    """Ray's ``AutoscalingConfig``: bounds, the per-replica target, and how fast to move."""

    min_replicas: int = 1
    max_replicas: int = 1
    initial_replicas: int | None = None
    target_ongoing_requests: float = 2.0
    metrics_interval_s: float = 10.0
    look_back_period_s: float = 30.0
    smoothing_factor: float = 1.0
    upscale_smoothing_factor: float | None = None
    downscale_smoothing_factor: float | None = None
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0

    def __attrs_post_init__(self) -> None:
        for name in ("min_replicas", "max_replicas"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"autoscaling_config.{name} must be an int >= 0, got {v!r}")
        if self.max_replicas < 1:
            raise ValueError(f"autoscaling_config.max_replicas must be >= 1, got {self.max_replicas}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"autoscaling_config.min_replicas ({self.min_replicas}) is greater than "
                             f"max_replicas ({self.max_replicas})")
        if self.initial_replicas is not None and not (self.min_replicas <= self.initial_replicas <= self.max_replicas):
            raise ValueError(f"autoscaling_config.initial_replicas ({self.initial_replicas}) must lie between "
                             f"min_replicas and max_replicas")
        if not self.target_ongoing_requests > 0:
            raise ValueError("autoscaling_config.target_ongoing_requests must be > 0, "
                             f"got {self.target_ongoing_requests}")
        for name in ("metrics_interval_s", "look_back_period_s", "upscale_delay_s", "downscale_delay_s"):
            _nonneg(f"autoscaling_config.{name}", getattr(self, name))
        for name in ("smoothing_factor", "upscale_smoothing_factor", "downscale_smoothing_factor",
                     "upscaling_factor", "downscaling_factor"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"autoscaling_config.{name} must be > 0, got {v!r}")

    @classmethod
    def coerce(cls, value: AutoscalingConfig | dict[str, Any] | None) -> AutoscalingConfig | None:
        if value is None or isinstance(value, AutoscalingConfig):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"autoscaling_config must be a dict or AutoscalingConfig, got {type(value).__name__}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown autoscaling_config keys: {sorted(unknown)} (known: {sorted(known)})")
        return cls(**value)

    @classmethod
    def default_auto(cls) -> AutoscalingConfig:
        """What ``num_replicas="auto"`` means in Ray 2.60."""
        return cls(min_replicas=1, max_replicas=100, target_ongoing_requests=2.0)

    def upscale_factor(self) -> float:
        return self.upscaling_factor or self.upscale_smoothing_factor or self.smoothing_factor

    def downscale_factor(self) -> float:
        return self.downscaling_factor or self.downscale_smoothing_factor or self.smoothing_factor

    def initial(self) -> int:
        return self.initial_replicas if self.initial_replicas is not None else self.min_replicas


@attrs.frozen
class DeploymentConfig:
    """Everything about a deployment but its code and constructor arguments."""

    num_replicas: int | None = 1  # None when autoscaling
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    max_queued_requests: int = -1
    autoscaling_config: AutoscalingConfig | None = None
    user_config: Any = None
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 30.0
    graceful_shutdown_timeout_s: float = 20.0
    ray_actor_options: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.num_replicas is not None:
            if not isinstance(self.num_replicas, int) or isinstance(self.num_replicas, bool) or self.num_replicas < 0:
                raise ValueError(f"num_replicas must be an int >= 0 or \"auto\", got {self.num_replicas!r}")
        elif self.autoscaling_config is None:
            raise ValueError("num_replicas=None needs an autoscaling_config")
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("num_replicas and autoscaling_config are exclusive (use num_replicas=\"auto\" "
                             "or leave num_replicas unset)")
        m = self.max_ongoing_requests
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise ValueError(f"max_ongoing_requests must be an int >= 1, got {m!r}")
        q = self.max_queued_requests
        if not isinstance(q, int) or isinstance(q, bool) or (q < 0 and q != -1):
            raise ValueError(f"max_queued_requests must be -1 (no limit) or an int >= 0, got {q!r}")
        _nonneg("health_check_period_s", self.health_check_period_s)
        _nonneg("graceful_shutdown_timeout_s", self.graceful_shutdown_timeout_s)
        if not (isinstance(self.health_check_timeout_s, (int, float)) and self.health_check_timeout_s > 0):
            raise ValueError(f"health_check_timeout_s must be > 0, got {self.health_check_timeout_s!r}")
        if not isinstance(self.ray_actor_options, dict):
            raise TypeError(f"ray_actor_options must be a dict, got {type(self.ray_actor_options).__name__}")
        allowed = {"num_cpus", "num_gpus", "memory", "resources", "runtime_env", "accelerator_type",
                   "scheduling_strategy", "object_store_memory"}
        bad = set(self.ray_actor_options) - allowed
        if bad:
            raise ValueError(f"ray_actor_options may not set {sorted(bad)} (allowed: {sorted(allowed)})")

    def initial_replicas(self) -> int:
        if self.autoscaling_config is not None:
            return self.autoscaling_config.initial()
        return self.num_replicas or 0

    @classmethod
    def build(cls, base: DeploymentConfig | None = None, **changes: Any) -> DeploymentConfig:
        """A config from ``base`` with Ray-style option values (``num_replicas="auto"``, dict autoscaling)."""
        base = base or cls()
        values = attrs.asdict(base, recurse=False)
        if "autoscaling_config" in changes:
            changes["autoscaling_config"] = AutoscalingConfig.coerce(changes["autoscaling_config"])
        if changes.get("num_replicas") == "auto":
            changes["num_replicas"] = None
            given = changes.get("autoscaling_config")
            changes["autoscaling_config"] = given if given is not None else AutoscalingConfig.default_auto()
        elif "num_replicas" in changes and changes["num_replicas"] is not None:
            changes.setdefault("autoscaling_config", None)
        elif changes.get("autoscaling_config") is not None:
            changes["num_replicas"] = None
        if "ray_actor_options" in changes and changes["ray_actor_options"] is None:
            changes["ray_actor_options"] = {}
        values.update(changes)
        return cls(**values)


def check_route_prefix(route_prefix: str | None) -> None:
    """Ray's rule: None (no HTTP) or a path starting with "/" and not ending with one (but "/")."""
    if route_prefix is None:
        return
    if not isinstance(route_prefix, str):
        raise TypeError(f"route_prefix must be a string, got {type(route_prefix).__name__}")
    if not route_prefix.startswith("/"):
        raise ValueError(f"route_prefix must start with \"/\", got {route_prefix!r}")
    if route_prefix != "/" and route_prefix.endswith("/"):
        raise ValueError(f"route_prefix may not end with \"/\" (unless it is \"/\"), got {route_prefix!r}")
    if "{" in route_prefix or "}" in route_prefix:
        raise ValueError(f"route_prefix may not contain wildcards, got {route_prefix!r}")


@attrs.frozen
class HTTPOptions:
    """Where the proxy listens (``serve.start(http_options=...)``); loopback unless opened."""

    host: str = "127.0.0.1"
    port: int = 8000
    root_path: str = ""
    request_timeout_s: float | None = None
    keep_alive_timeout_s: float = 5.0
    server: str = "tray"  # the proxy's HTTP server: "tray" (lean HTTP/1.1 + WebSocket) or "hypercorn"

    def __attrs_post_init__(self) -> None:
        if self.server not in ("tray", "hypercorn"):
            raise ValueError(f"http_options server must be \"tray\" or \"hypercorn\", got {self.server!r}")
        if not isinstance(self.port, int) or not 0 <= self.port < 65536:
            raise ValueError(f"http_options port must be an int in [0, 65535], got {self.port!r}")

    @classmethod
    def coerce(cls, value: HTTPOptions | dict[str, Any] | None) -> HTTPOptions:
        if value is None:
            return cls()
        if isinstance(value, HTTPOptions):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"http_options must be a dict or HTTPOptions, got {type(value).__name__}")
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(value) - known - {"location", "middlewares"}
        if unknown:
            raise ValueError(f"unknown http_options keys: {sorted(unknown)} (known: {sorted(known)})")
        return cls(**{k: v for k, v in value.items() if k in known})


class _Unset:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Unset()


def not_serve_running() -> RayServeException:
    return RayServeException("Serve is not running on this cluster (call serve.run() or serve.start() first)")
