"""Errors of the supervision layer: bad specs/configs, and the reasons a supervisor gives up."""

from __future__ import annotations

from typing import Any

from ..exceptions import RayError


class ConfigError(ValueError):
    """A supervisor or child spec is invalid; the message names the file, child and field.

    ``source`` is the config file (or None for specs built in code), ``child`` the dotted
    path of child ids down to the bad child (None for the supervisor itself), ``field``
    the offending field.
    """

    def __init__(self, field: str, message: str, *, child: str | None = None, source: str | None = None) -> None:
        self.field, self.problem, self.child, self.source = field, message, child, source
        super().__init__(field, message, child, source)

    def located(self, *, child: str | None = None, source: str | None = None) -> ConfigError:
        """The same error with an outer child path prefixed and/or the source file filled in."""
        path = self.child
        if child is not None:
            path = child if path is None else f"{child}.{path}"
        return ConfigError(self.field, self.problem, child=path, source=source or self.source)

    def __str__(self) -> str:
        where = [self.source] if self.source else []
        if self.child is not None:
            where.append(f"child {self.child!r}")
        where.append(f"field {self.field!r}")
        return f"{': '.join(where)}: {self.problem}"


class SupervisorEscalation(RayError):
    """A supervisor gave up on its children and exited abnormally, so its parent decides."""


class RestartIntensityExceeded(SupervisorEscalation):
    """More than ``intensity`` restarts happened within ``period`` seconds (OTP's reached_max_restart_intensity)."""

    def __init__(self, supervisor: str, child: str, intensity: int, period: float, last_reason: Any = None) -> None:
        super().__init__(
            f"supervisor {supervisor}: more than {intensity} restart(s) within {period} s"
            f" (last: child {child!r}, {_describe(last_reason)})"
        )
        self.supervisor, self.child, self.intensity, self.period = supervisor, child, intensity, period
        self.last_reason = last_reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.supervisor, self.child, self.intensity, self.period, self.last_reason))


def _describe(reason: Any) -> str:
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return f"exit {reason}"
