"""What ``serve.status()`` returns: Ray's status enums and overview records."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class ApplicationStatus(enum.StrEnum):
    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DELETING = "DELETING"


class DeploymentStatus(enum.StrEnum):
    UPDATING = "UPDATING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    UPSCALING = "UPSCALING"
    DOWNSCALING = "DOWNSCALING"


class ReplicaState(enum.StrEnum):
    STARTING = "STARTING"
    UPDATING = "UPDATING"
    RECOVERING = "RECOVERING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"


@attrs.frozen
class DeploymentStatusOverview:
    status: DeploymentStatus
    replica_states: dict[str, int]
    message: str = ""
    target_num_replicas: int = 0


@attrs.frozen
class ApplicationStatusOverview:
    status: ApplicationStatus
    message: str
    last_deployed_time_s: float
    deployments: dict[str, DeploymentStatusOverview]
    route_prefix: str | None = None


@attrs.frozen
class ProxyStatusOverview:
    host: str
    port: int
    status: str = "HEALTHY"


@attrs.frozen
class ServeStatus:
    proxies: dict[str, ProxyStatusOverview] = attrs.Factory(dict)
    applications: dict[str, ApplicationStatusOverview] = attrs.Factory(dict)
    target_capacity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: v.value if isinstance(v, enum.Enum) else v)


def from_controller(raw: dict[str, Any], node_id: str = "head") -> ServeStatus:
    apps = {}
    for name, a in raw["applications"].items():
        deps = {dn: DeploymentStatusOverview(DeploymentStatus(d["status"]), dict(d["replica_states"]), d["message"],
                                             d["target"])
                for dn, d in a["deployments"].items()}
        apps[name] = ApplicationStatusOverview(ApplicationStatus(a["status"]), a["message"],
                                               a["last_deployed_time_s"], deps, a["route_prefix"])
    proxies = {}
    if raw.get("proxy"):
        proxies[node_id] = ProxyStatusOverview(raw["proxy"]["host"], raw["proxy"]["port"])
    return ServeStatus(proxies=proxies, applications=apps)
