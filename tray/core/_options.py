"""Options of remote functions and actor classes: Ray's names, defaults and checks.

Each option is checked where it is given (``@remote(...)`` or ``.options(...)``), so a
typo or a wrong type fails at the call site with the option's name, not in a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..cluster._labels import check_fallback_strategy, check_label_selector
from ._runtime_envs import check as _runtime_env

Check = Callable[[Any], bool]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def _gpus(v: Any) -> bool:
    """A number of GPUs: a fraction of one, or whole ones (Ray's rule: fractions share one GPU)."""
    if _number(v) and v > 1 and v != int(v):
        raise ValueError(f"GPU resource quantities >1 must be whole numbers. The specified quantity {v} is invalid.")
    return _number(v)


def _int_at_least(lo: int) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _resources(v: Any) -> bool:
    return v is None or (
        isinstance(v, dict)
        and all(isinstance(k, str) and _number(x) for k, x in v.items())
        and not {"CPU", "GPU", "memory"} & set(v)
    )


def _num_returns(v: Any) -> bool:
    return v in ("streaming", "dynamic") or _int_at_least(0)(v)


def _retry_exceptions(v: Any) -> bool:
    return isinstance(v, bool) or (
        isinstance(v, (list, tuple)) and all(isinstance(t, type) and issubclass(t, BaseException) for t in v)
    )


def _typed(name: str, *types: type | None) -> Check:
    """A check that raises Ray's TypeError for a value of another type (bools are not ints)."""
    allowed = tuple(type(None) if t is None else t for t in types)

    def check(v: Any) -> bool:
        if not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed):
            raise TypeError(f"The type of keyword '{name}' must be {allowed}, but received type {type(v)}")
        return True

    return check


def _placement_group(v: Any) -> bool:
    """The legacy ``placement_group=`` option: None, "default" or a group (duck-typed: core
    cannot import tray.util)."""
    if v is None or isinstance(v, str) or (hasattr(v, "bundle_cache") and hasattr(v, "id")):
        return True
    raise TypeError(f"The type of keyword 'placement_group' must be (None, str, PlacementGroup), "
                    f"but received type {type(v)}")


_COMMON: dict[str, tuple[Any, Check, str]] = {
    # name: (default, check, what a valid value is)
    "num_cpus": (None, _optional(_number), "a number >= 0"),
    "num_gpus": (None, _optional(_gpus), "a number >= 0, whole above 1"),
    "resources": (None, _resources, "a dict of custom resource names to numbers >= 0 (not CPU/GPU/memory)"),
    "memory": (None, _optional(_number), "a number of bytes >= 0"),
    "scheduling_strategy": (None, lambda v: v in (None, "DEFAULT", "SPREAD") or not isinstance(v, str),
                            "None, 'DEFAULT', 'SPREAD' or a scheduling strategy object"),
    "runtime_env": (None, _optional(_runtime_env), "a dict of Ray's runtime_env fields"),  # raises naming the field
    "name": (None, _optional(lambda v: isinstance(v, str) and v != ""), "a non-empty str"),
    "accelerator_type": (None, _optional(lambda v: isinstance(v, str)), "a str"),
    "label_selector": (None, _optional(lambda v: bool(check_label_selector(v)) or True),
                       "a dict of label keys to conditions ('v', '!v', 'in(a,b)', '!in(a,b)')"),
    "fallback_strategy": (None, _optional(lambda v: bool(check_fallback_strategy(v)) or True),
                          "a list of {'label_selector': {...}} dicts"),
    # Ray's deprecated forms of PlacementGroupSchedulingStrategy (still accepted by Ray)
    "placement_group": ("default", _placement_group, "None, 'default' or a PlacementGroup"),
    "placement_group_bundle_index": (-1, _typed("placement_group_bundle_index", int), "an int >= -1"),
    "placement_group_capture_child_tasks": (None, _typed("placement_group_capture_child_tasks", bool, None),
                                            "a bool or None"),
}

FUNCTION_OPTIONS: dict[str, tuple[Any, Check, str]] = {
    **_COMMON,
    "name": (None, _optional(lambda v: isinstance(v, str)), "a str ('': the function's name)"),  # Ray takes ''
    "num_returns": (1, _num_returns, "an int >= 0, 'streaming' or 'dynamic'"),
    "max_retries": (3, _int_at_least(-1), "an int >= -1 (-1: retry forever)"),
    "retry_exceptions": (False, _retry_exceptions, "a bool or a list of exception classes"),
    "max_calls": (0, _int_at_least(0), "an int >= 0"),
}

ACTOR_OPTIONS: dict[str, tuple[Any, Check, str]] = {
    **_COMMON,
    "namespace": (None, _optional(lambda v: isinstance(v, str) and v != ""), "a non-empty str (None: the job's)"),
    "lifetime": (None, lambda v: v in (None, "detached", "non_detached"), "None, 'detached' or 'non_detached'"),
    "get_if_exists": (False, lambda v: isinstance(v, bool), "a bool"),
    "max_restarts": (0, _int_at_least(-1), "an int >= -1 (-1: restart forever)"),
    "max_task_retries": (0, _int_at_least(-1), "an int >= -1 (-1: retry forever)"),
    "max_concurrency": (None, _optional(_int_at_least(0)), "an int >= 0 (0: the default)"),
    "max_pending_calls": (-1, _int_at_least(-1), "an int >= -1"),
    "concurrency_groups": (None, _optional(lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and type(n) is int and n >= 1 for k, n in v.items())), "a dict of group name -> int >= 1"),
}

METHOD_OPTIONS: dict[str, tuple[Any, Check, str]] = {
    "num_returns": FUNCTION_OPTIONS["num_returns"],
    "max_task_retries": ACTOR_OPTIONS["max_task_retries"],
    "retry_exceptions": FUNCTION_OPTIONS["retry_exceptions"],
    "concurrency_group": (None, _optional(lambda v: isinstance(v, str)), "a str"),
    "name": _COMMON["name"],
}


_NUMBER = (int, float, type(None))
_COUNT = (int, type(None))
_STR = (str, type(None))
RAY_TYPES: dict[str, tuple[type, ...]] = {
    # the types Ray accepts for an option: a value of another type is a TypeError, as in Ray
    "num_cpus": _NUMBER, "num_gpus": _NUMBER, "memory": _NUMBER, "resources": (dict, type(None)),
    "num_returns": (int, str, type(None)), "max_retries": _COUNT, "max_calls": _COUNT, "max_restarts": _COUNT,
    "max_task_retries": _COUNT, "max_concurrency": _COUNT, "max_pending_calls": _COUNT,
    "retry_exceptions": (bool, list, tuple), "runtime_env": (dict, type(None)), "name": _STR, "namespace": _STR,
    "lifetime": _STR, "accelerator_type": _STR, "get_if_exists": (bool,), "concurrency_groups": (dict, type(None)),
}
NONE_IS_DEFAULT = frozenset({"num_returns", "max_retries", "max_calls", "max_restarts", "max_task_retries",
                             "max_concurrency", "max_pending_calls"})
"""Options whose None means "the default", as in Ray (they are dropped, so the default applies)."""


def without_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` less those set to None where None means the default."""
    if not any(options[k] is None for k in NONE_IS_DEFAULT.intersection(options)):
        return options
    return {k: v for k, v in options.items() if v is not None or k not in NONE_IS_DEFAULT}


def validate(table: dict[str, tuple[Any, Check, str]], options: dict[str, Any], what: str) -> dict[str, Any]:
    """Check ``options`` against ``table``; return them unchanged, or raise naming the culprit:
    an unknown option or a bad value is a ValueError, a value of a type Ray does not take
    for that option a TypeError (as in Ray)."""
    for key, value in options.items():
        spec = table.get(key)
        if spec is None:
            raise ValueError(f"Invalid option keyword {key!r} for {what}. Valid ones are {sorted(table)}.")
        types = RAY_TYPES.get(key)
        if types is not None and not isinstance(value, types):
            raise TypeError(f"The type of keyword {key!r} of {what} must be "
                            f"({', '.join(t.__name__ for t in types)}), but received type {type(value).__name__}")
        if value is None and key in NONE_IS_DEFAULT:
            continue
        if not spec[1](value):
            raise ValueError(f"Invalid value {value!r} for option {key!r} of {what}: expected {spec[2]}.")
    if options.get("placement_group") not in (None, "default") and options.get("scheduling_strategy") is not None:
        raise ValueError("Placement groups should be specified via the scheduling_strategy option. "
                         "The placement_group option is deprecated.")
    return options

