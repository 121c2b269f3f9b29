"""``SupervisorSpec`` and ``ChildSpec``: frozen, validated descriptions of a supervision tree."""

from __future__ import annotations

import builtins
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

import attrs

from ..actors import Actor, ActorSystem, MailboxSpec
from ._backoff import Backoff
from ._errors import ConfigError
from ._strategy import DIRECTIVES, RESTARTS, STRATEGIES, resolve_exception

SHUTDOWN_WORDS = ("brutal_kill", "infinity")
AUTO_SHUTDOWN = ("never", "any_significant", "all_significant")
# Keyword arguments of ActorSystem.spawn (name, mailbox, link…): a child's kwargs cannot carry them through it.
RESERVED_KWARGS = frozenset(
    p.name
    for p in inspect.signature(ActorSystem.spawn).parameters.values()
    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
)


def import_object(path: str) -> Any:
    """Import ``"package.module:Name"`` (or ``"package.module.Name"``) and return the object."""
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ValueError(f"{path!r} is not of the form 'package.module:Name'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    """``tuple``, typed for attrs' converter (the bare builtin leaves mypy an unsolved type variable)."""
    return tuple(items)


def _default_type(self: ChildSpec) -> str:
    from ._supervisor import Supervisor

    start = self.start
    if isinstance(start, SupervisorSpec) or (isinstance(start, type) and issubclass(start, Supervisor)):
        return "supervisor"
    return "worker"


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child (OTP's child spec, plus Akka's extras).

    ``start`` is an :class:`~tray.Actor` subclass, a ``"package.module:Class"`` string, or
    a :class:`SupervisorSpec` (a nested supervisor). ``restart``: permanent (always
    restarted), transient (only after an abnormal exit), temporary (never). ``shutdown``:
    seconds to wait for ``on_stop`` before killing, ``"brutal_kill"`` or ``"infinity"``
    (the default for supervisors, 5.0 for workers). ``decider`` maps exception classes
    (or their names) to "resume" | "restart" | "stop" | "escalate", or is a callable
    ``exc -> directive``; default "restart". ``backoff`` delays restarts; ``intensity``/
    ``period`` optionally bound this child's own restarts (past them it is given up and
    left "failed", as Ray's ``max_restarts``). ``name`` registers the child in the
    system (kept across restarts, so ``system.lookup(name)`` always finds the live one).
    """

    id: str = attrs.field(kw_only=False)
    start: Any = attrs.field(kw_only=False)  # type[Actor] | str | SupervisorSpec
    args: tuple[Any, ...] = attrs.field(default=(), converter=_as_tuple)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    restart: str = "permanent"
    type: str = attrs.field(default=attrs.Factory(_default_type, takes_self=True))
    shutdown: float | str = attrs.field(
        default=attrs.Factory(lambda self: "infinity" if self.type == "supervisor" else 5.0, takes_self=True)
    )
    significant: bool = False
    backoff: Backoff | None = None
    decider: Mapping[Any, str] | Callable[[BaseException], str] | None = None
    name: str | None = None
    intensity: int | None = None
    period: float | None = None
    mailbox: MailboxSpec | None = None
    max_concurrency: int = 1

    def __attrs_post_init__(self) -> None:
        try:
            self._validate()
        except ConfigError as e:
            raise e.located(child=self.id if isinstance(self.id, str) and self.id else None) from None

    def _validate(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError("id", f"must be a non-empty string, got {self.id!r}")
        start = self.start
        if isinstance(start, str):
            if ":" not in start and "." not in start:
                raise ConfigError("start", f"must name a class as 'package.module:Class', got {start!r}")
        elif isinstance(start, SupervisorSpec):
            if self.args or self.kwargs:
                raise ConfigError("args", "a child started from a SupervisorSpec takes no args or kwargs")
        elif not (isinstance(start, type) and issubclass(start, Actor)):
            raise ConfigError(
                "start", f"must be an Actor subclass, 'package.module:Class' or a SupervisorSpec, got {start!r}"
            )
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise ConfigError("kwargs", f"must be a mapping with string keys, got {self.kwargs!r}")
        clash = sorted(RESERVED_KWARGS.intersection(self.kwargs))
        if clash:
            raise ConfigError("kwargs", f"{', '.join(clash)}: reserved by ActorSystem.spawn; pass it in args")
        if self.restart not in RESTARTS:
            raise ConfigError("restart", f"must be one of {', '.join(RESTARTS)}; got {self.restart!r}")
        if self.type not in ("worker", "supervisor"):
            raise ConfigError("type", f"must be 'worker' or 'supervisor', got {self.type!r}")
        sd = self.shutdown
        if not ((_number(sd) and sd >= 0) or sd in SHUTDOWN_WORDS):
            raise ConfigError("shutdown", f"must be seconds >= 0, 'brutal_kill' or 'infinity'; got {sd!r}")
        if not isinstance(self.significant, bool):
            raise ConfigError("significant", f"must be true or false, got {self.significant!r}")
        if self.significant and self.restart == "permanent":
            raise ConfigError("significant", "a permanent child cannot be significant (make it transient or temporary)")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise ConfigError("backoff", f"must be a Backoff, got {self.backoff!r}")
        dec = self.decider
        if dec is not None and not callable(dec):
            if not isinstance(dec, Mapping):
                raise ConfigError("decider", f"must map exception classes to directives, got {dec!r}")
            for key, directive in dec.items():
                try:
                    cls = resolve_exception(key) if isinstance(key, str) else key
                except (ImportError, AttributeError, ValueError) as e:
                    raise ConfigError("decider", f"{key!r}: {e}") from None
                if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                    raise ConfigError("decider", f"{key!r} is not an exception class")
                if directive not in DIRECTIVES:
                    raise ConfigError(
                        "decider", f"{key!r} maps to {directive!r}; must be one of {', '.join(DIRECTIVES)}"
                    )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ConfigError("name", f"must be a non-empty string, got {self.name!r}")
        if self.intensity is not None and (not isinstance(self.intensity, int) or self.intensity < 0):
            raise ConfigError("intensity", f"must be an int >= 0, got {self.intensity!r}")
        if self.period is not None and (not _number(self.period) or self.period <= 0):
            raise ConfigError("period", f"must be seconds > 0, got {self.period!r}")
        if (self.period is None) != (self.intensity is None):
            raise ConfigError("period" if self.period is None else "intensity", "intensity and period go together")
        if self.mailbox is not None and not isinstance(self.mailbox, MailboxSpec):
            raise ConfigError("mailbox", f"must be a MailboxSpec, got {self.mailbox!r}")
        if not isinstance(self.max_concurrency, int) or self.max_concurrency < 1:
            raise ConfigError("max_concurrency", f"must be an int >= 1, got {self.max_concurrency!r}")

    def actor_class(self) -> builtins.type[Actor]:  # builtins: the field `type` shadows it here
        """The class to spawn (importing a ``"package.module:Class"`` string)."""
        start = self.start
        if isinstance(start, SupervisorSpec):
            from ._supervisor import Supervisor

            return Supervisor
        if isinstance(start, str):
            try:
                start = import_object(start)
            except (ImportError, AttributeError, ValueError) as e:
                raise ConfigError("start", f"cannot import {self.start!r}: {e}", child=self.id) from None
            if not (isinstance(start, type) and issubclass(start, Actor)):
                raise ConfigError("start", f"{self.start!r} is not an Actor subclass", child=self.id)
        return start

    def start_args(self) -> tuple[Any, ...]:
        """Positional arguments for the actor's ``__init__``."""
        if isinstance(self.start, SupervisorSpec):
            return (self.start,)
        return self.args


@attrs.frozen(kw_only=True)
class SupervisorSpec:
    """A supervisor: its ``strategy``, its restart intensity and its children, in start order.

    More than ``intensity`` restarts within ``period`` seconds make it stop every child
    (in reverse order) and exit abnormally, escalating to its parent. ``auto_shutdown``
    ("never", "any_significant", "all_significant") stops it when significant children
    exit for good. ``simple_one_for_one`` takes exactly one child spec: the template for
    children started with ``start_child``. ``name`` labels it in logs (``tray up``
    also registers the root supervisor under it).
    """

    strategy: str = attrs.field(kw_only=False)
    intensity: int = 1
    period: float = 5.0
    children: tuple[ChildSpec, ...] = attrs.field(default=(), converter=_as_tuple)
    auto_shutdown: str = "never"
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError("strategy", f"must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        if not isinstance(self.intensity, int) or isinstance(self.intensity, bool) or self.intensity < 0:
            raise ConfigError("intensity", f"must be an int >= 0, got {self.intensity!r}")
        if not _number(self.period) or self.period <= 0:
            raise ConfigError("period", f"must be seconds > 0, got {self.period!r}")
        if self.auto_shutdown not in AUTO_SHUTDOWN:
            raise ConfigError("auto_shutdown", f"must be one of {', '.join(AUTO_SHUTDOWN)}; got {self.auto_shutdown!r}")
        seen: set[str] = set()
        for child in self.children:
            if not isinstance(child, ChildSpec):
                raise ConfigError("children", f"must hold ChildSpecs, got {child!r}")
            if child.id in seen:
                raise ConfigError("id", "duplicate child id", child=child.id)
            seen.add(child.id)
            if child.significant and self.auto_shutdown == "never":
                raise ConfigError(
                    "significant", "significant children need auto_shutdown 'any_significant' or 'all_significant'",
                    child=child.id,
                )
        if self.strategy == "simple_one_for_one":
            if len(self.children) != 1:
                raise ConfigError(
                    "children", f"simple_one_for_one needs exactly one child spec, got {len(self.children)}"
                )
            if self.children[0].name is not None:
                raise ConfigError("name", "the template of simple_one_for_one children cannot have a name",
                                  child=self.children[0].id)
