"""tray's dashboard: a web UI, Ray's REST state and job APIs, and Prometheus ``/metrics``
for a cluster, served by the head node (``tray.init(include_dashboard=True)``, the default
when ``tray[default]`` is installed, or ``tray start --head``) on 127.0.0.1:8265, behind
the cluster token.

The head starts :class:`~tray.dashboard._head.DashboardProcess` from a string; the web
server itself is a separate process started on the first connection (see ``_head``).
Importing this package imports no optional dependency.
"""

from __future__ import annotations

DEFAULT_PORT = 8265
HEAD_CHILD = "tray.dashboard._head:DashboardProcess"

__all__ = ["DEFAULT_PORT", "HEAD_CHILD"]
