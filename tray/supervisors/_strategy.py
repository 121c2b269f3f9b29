"""What a supervisor does when a child exits: pure decisions, no actors, no clocks."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"]
Restart = Literal["permanent", "transient", "temporary"]
Directive = Literal["resume", "restart", "stop", "escalate"]

STRATEGIES: tuple[str, ...] = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
RESTARTS: tuple[str, ...] = ("permanent", "transient", "temporary")
DIRECTIVES: tuple[str, ...] = ("resume", "restart", "stop", "escalate")

# Exit reasons that are not failures: a transient child is not restarted after them (OTP).
NORMAL_REASONS = ("normal", "shutdown")


def is_abnormal(reason: Any) -> bool:
    """Whether an exit reason is a failure ("killed", "noproc", an exception…)."""
    return not (isinstance(reason, str) and reason in NORMAL_REASONS)


def should_restart(restart: str, reason: Any) -> bool:
    """OTP's restart types: permanent always, transient after a failure, temporary never."""
    if restart == "permanent":
        return True
    if restart == "transient":
        return is_abnormal(reason)
    return False


def affected(strategy: str, order: Sequence[str], failed: str) -> list[str]:
    """The children (ids, in start order, ``failed`` included) that go down and come back with ``failed``."""
    if strategy == "one_for_all":
        return list(order)
    if strategy == "rest_for_one":
        return list(order[order.index(failed) :])
    return [failed]


def resolve_exception(name: str) -> type[BaseException]:
    """``"ValueError"`` (a builtin), ``"pkg.mod:Exc"`` or ``"pkg.mod.Exc"`` to the class."""
    obj: Any
    if ":" not in name and "." not in name:
        obj = getattr(builtins, name, None)
    else:
        from ._spec import import_object

        obj = import_object(name)
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise ValueError(f"{name!r} is not an exception class")
    return obj


DeciderSpec = Mapping[Any, str] | Callable[[BaseException], str] | None


def resolve_directive(decider: DeciderSpec, exc: BaseException, default: str = "restart") -> str:
    """What ``decider`` says about ``exc``: a callable is called; a mapping is matched
    against the exception's class hierarchy, most specific class first (keys are classes
    or names as in :func:`resolve_exception`); otherwise ``default``."""
    if decider is None:
        return default
    if callable(decider):
        return decider(exc)
    mro = type(exc).__mro__
    best: tuple[int, str] | None = None
    for key, directive in decider.items():
        cls = resolve_exception(key) if isinstance(key, str) else key
        if cls in mro:
            rank = mro.index(cls)
            if best is None or rank < best[0]:
                best = (rank, directive)
    return default if best is None else best[1]
