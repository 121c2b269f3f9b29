"""``tune.with_parameters`` (large objects put in the object store once, fetched once per
process) and ``tune.with_resources`` (a trainable's own resource request)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import tray

from .._air import PlacementGroupFactory, ScalingConfig
from .trainable import Trainable

_FETCHED: dict[str, Any] = {}


def _values(refs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, ref in refs.items():
        key = ref.hex()
        if key not in _FETCHED:
            _FETCHED[key] = tray.get(ref)
        out[name] = _FETCHED[key]
    return out


def trainable_name(trainable: Any) -> str:
    inner = getattr(trainable, "_tray_wrapped", trainable)
    return getattr(inner, "__name__", type(inner).__name__)


class _WithParameters:
    """A function trainable called with the put objects as keyword arguments."""

    def __init__(self, fn: Any, refs: dict[str, Any], resources: Any = None) -> None:
        self._tray_wrapped = fn
        self._refs = refs
        self._tray_resources = resources
        functools.update_wrapper(self, fn)

    def __call__(self, config: dict[str, Any]) -> Any:
        return self._tray_wrapped(config, **_values(self._refs))


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """``trainable`` receiving ``kwargs`` (each ``tray.put`` once, here) besides its config."""
    if not callable(trainable):
        raise TypeError(f"with_parameters: the trainable must be a function or a Trainable class, "
                        f"got {type(trainable).__name__}")
    refs = {name: tray.put(value) for name, value in kwargs.items()}
    if isinstance(trainable, type) and issubclass(trainable, Trainable):
        base = trainable

        class _Wrapped(base):  # type: ignore[valid-type, misc]
            _tray_param_refs = refs

            def setup(self, config: dict[str, Any]) -> None:
                base.setup(self, config, **_values(self._tray_param_refs))

        _Wrapped.__name__ = _Wrapped.__qualname__ = base.__name__
        return _Wrapped
    params = list(inspect.signature(trainable).parameters)
    missing = [k for k in kwargs if k not in params] if not any(
        p.kind == p.VAR_KEYWORD for p in inspect.signature(trainable).parameters.values()) else []
    if missing:
        raise TypeError(f"with_parameters: {trainable_name(trainable)}() takes no parameter named "
                        f"{', '.join(missing)}")
    return _WithParameters(trainable, refs, getattr(trainable, "_tray_resources", None))


class _WithResources:
    def __init__(self, fn: Any, resources: Any) -> None:
        self._tray_wrapped = getattr(fn, "_tray_wrapped", fn)
        self._inner = fn
        self._tray_resources = resources
        functools.update_wrapper(self, self._tray_wrapped)

    def __call__(self, config: dict[str, Any]) -> Any:
        return self._inner(config)


def with_resources(trainable: Any, resources: dict[str, float] | PlacementGroupFactory | ScalingConfig | Any) -> Any:
    """``trainable`` asking for ``resources`` per trial (a dict, a PlacementGroupFactory, a
    ScalingConfig, or a function of the config returning one)."""
    if isinstance(resources, ScalingConfig):
        resources = resources.as_placement_group_factory()
    if not (isinstance(resources, (dict, PlacementGroupFactory)) or callable(resources)):
        raise TypeError(f"with_resources: resources must be a dict, a PlacementGroupFactory, a ScalingConfig or a "
                        f"function of the config, got {type(resources).__name__}")
    if isinstance(trainable, type) and issubclass(trainable, Trainable):
        base = trainable
        chosen = resources

        class _Wrapped(base):  # type: ignore[valid-type, misc]
            _tray_resources = chosen

        _Wrapped.__name__ = _Wrapped.__qualname__ = base.__name__
        return _Wrapped
    if not callable(trainable):
        raise TypeError(f"with_resources: the trainable must be callable, got {type(trainable).__name__}")
    return _WithResources(trainable, resources)
