"""Serve: model serving over HTTP and handles, at Ray Serve's API (``from tray import serve``).

Deployments run as replica actors under a controller actor; an HTTP proxy (hypercorn on trio)
routes requests to them by route prefix. Start with ``@serve.deployment``, ``.bind()`` and
``serve.run()``; see ``tray/serve/docs.md``.
"""

from tray import lowlevel as _lowlevel

_lowlevel.require("starlette", "serve")

from . import exceptions, schema  # noqa: E402
from ._ingress import ingress  # noqa: E402
from .api import delete, get_app_handle, get_deployment_handle, run, shutdown, start, status  # noqa: E402
from .batching import batch  # noqa: E402
from .config import AutoscalingConfig, DeploymentConfig, HTTPOptions  # noqa: E402
from .context import ReplicaContext, get_multiplexed_model_id, get_replica_context  # noqa: E402
from .deployment import Application, Deployment, deployment  # noqa: E402
from .handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator  # noqa: E402
from .multiplex import multiplexed  # noqa: E402

__all__ = [
    "Application",
    "AutoscalingConfig",
    "Deployment",
    "DeploymentConfig",
    "DeploymentHandle",
    "DeploymentResponse",
    "DeploymentResponseGenerator",
    "HTTPOptions",
    "ReplicaContext",
    "batch",
    "delete",
    "deployment",
    "exceptions",
    "get_app_handle",
    "get_deployment_handle",
    "get_multiplexed_model_id",
    "get_replica_context",
    "ingress",
    "multiplexed",
    "run",
    "schema",
    "shutdown",
    "start",
    "status",
]
