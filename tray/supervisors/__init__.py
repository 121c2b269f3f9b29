"""Supervision trees: OTP's strategies and restart semantics plus Akka's deciders and backoff.

Describe a tree with :class:`SupervisorSpec` / :class:`ChildSpec` (or a TOML config via
:func:`load_config`), start it with ``await system.spawn(Supervisor, spec)``. The pure
decision logic lives in small I/O-free modules (``_strategy``, ``_intensity``,
``_backoff``) that the :class:`Supervisor` actor applies. Imports only ``tray.actors``.
"""

from ._backoff import Backoff
from ._config import load_config
from ._errors import ConfigError, RestartIntensityExceeded, SupervisorEscalation
from ._spec import ChildSpec, SupervisorSpec
from ._supervisor import Supervisor

__all__ = [
    "Backoff",
    "ChildSpec",
    "ConfigError",
    "RestartIntensityExceeded",
    "Supervisor",
    "SupervisorEscalation",
    "SupervisorSpec",
    "load_config",
]
