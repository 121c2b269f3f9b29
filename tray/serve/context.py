"""What user code may ask about where it runs: the replica, and the request being served."""

from __future__ import annotations

import contextvars
from typing import Any

import attrs


@attrs.frozen
class DeploymentID:
    name: str
    app_name: str = "default"


@attrs.frozen
class ReplicaID:
    unique_id: str
    deployment_id: DeploymentID

    def to_full_id_str(self) -> str:
        return f"{self.deployment_id.app_name}#{self.deployment_id.name}#{self.unique_id}"


@attrs.frozen
class ReplicaContext:
    """Ray's ``serve.context.ReplicaContext``: the replica running this code."""

    replica_id: ReplicaID
    servable_object: Any = attrs.field(eq=False, repr=False)

    @property
    def app_name(self) -> str:
        return self.replica_id.deployment_id.app_name

    @property
    def deployment(self) -> str:
        return self.replica_id.deployment_id.name

    @property
    def replica_tag(self) -> str:
        return self.replica_id.unique_id


@attrs.frozen
class RequestContext:
    request_id: str = ""
    route: str = ""
    app_name: str = ""
    multiplexed_model_id: str = ""


_replica: ReplicaContext | None = None
_NO_REQUEST = RequestContext()
_request: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("serve_request",
                                                                          default=_NO_REQUEST)  # noqa: B039


def set_replica(ctx: ReplicaContext | None) -> None:
    global _replica
    _replica = ctx


def get_replica_context() -> ReplicaContext:
    """The replica this code runs in; RayServeException outside a replica (as Ray)."""
    from .exceptions import RayServeException

    if _replica is None:
        raise RayServeException("`serve.get_replica_context()` may only be called from within a Serve replica")
    return _replica


def current_request() -> RequestContext:
    return _request.get()


def set_request(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _request.set(ctx)


def get_multiplexed_model_id() -> str:
    """The model id the current request asked for (header ``serve_multiplexed_model_id`` or
    ``handle.options(multiplexed_model_id=...)``); "" when none."""
    return _request.get().multiplexed_model_id
