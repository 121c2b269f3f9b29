"""``PlacementGroupFactory``: what one trial (or one Train run) asks the cluster for, as a list of
resource bundles placed together (Ray's ``ray.tune.PlacementGroupFactory``). The first bundle
is the trial actor's own; the rest are for the workers it starts."""

from __future__ import annotations

from typing import Any

from ..lowlevel import check_bundles, check_strategy


def normalize_resources(request: dict[str, Any], *, what: str = "resources") -> dict[str, float]:
    """Ray's resource dict spellings (``cpu``/``gpu``/``num_cpus``, ``custom_resources``) -> {"CPU": n, ...}."""
    if not isinstance(request, dict):
        raise TypeError(f"{what} must be a dict like {{'cpu': 1}}, got {type(request).__name__}")
    out: dict[str, float] = {}
    aliases = {"cpu": "CPU", "num_cpus": "CPU", "gpu": "GPU", "num_gpus": "GPU", "memory": "memory"}
    for key, value in request.items():
        if key in ("custom_resources", "resources") and isinstance(value, dict):
            for k, v in value.items():
                out[k] = out.get(k, 0.0) + float(v)
            continue
        if key in ("extra_cpu", "extra_gpu"):
            name = "CPU" if key == "extra_cpu" else "GPU"
            out[name] = out.get(name, 0.0) + float(value or 0)
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{what}: {key}={value!r} is not a non-negative number")
        name = aliases.get(key, key)
        out[name] = out.get(name, 0.0) + float(value)
    return {k: v for k, v in out.items() if v > 0 or k == "CPU"}


class PlacementGroupFactory:
    """Bundles of resources placed with ``strategy`` (PACK, SPREAD, STRICT_PACK, STRICT_SPREAD)."""

    def __init__(self, bundles: list[dict[str, float]], strategy: str = "PACK", *args: Any, **kwargs: Any) -> None:
        if not bundles:
            raise ValueError("PlacementGroupFactory needs at least one bundle")
        bundles = [normalize_resources(dict(b), what="bundle") for b in bundles]
        self._head_bundle_is_empty = not any(v > 0 for v in bundles[0].values())
        check_bundles([b for b in bundles if any(v > 0 for v in b.values())] or [{"CPU": 0.0001}])
        check_strategy(strategy)
        self._bundles = bundles
        self.strategy = strategy
        self._args, self._kwargs = args, kwargs

    @property
    def bundles(self) -> list[dict[str, float]]:
        return [dict(b) for b in self._bundles]

    @property
    def head_bundle_is_empty(self) -> bool:
        return self._head_bundle_is_empty

    @property
    def head_cpus(self) -> float:
        return self._bundles[0].get("CPU", 0.0)

    @property
    def required_resources(self) -> dict[str, float]:
        """The sum of every bundle."""
        total: dict[str, float] = {}
        for b in self._bundles:
            for k, v in b.items():
                total[k] = total.get(k, 0.0) + v
        return {k: v for k, v in total.items() if v > 0}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroupFactory) and self._bundles == other._bundles \
            and self.strategy == other.strategy

    def __hash__(self) -> int:
        return hash((repr(self._bundles), self.strategy))

    def __repr__(self) -> str:
        bound = f"bundles={self._bundles}, strategy={self.strategy!r}"
        return f"<PlacementGroupFactory (_bound=<BoundArguments ({bound})>)>"


def resources_to_factory(request: dict[str, Any] | PlacementGroupFactory | None) -> PlacementGroupFactory:
    """A trial's resource request in any of Ray's forms -> a factory (default: one CPU)."""
    if request is None:
        return PlacementGroupFactory([{"CPU": 1.0}])
    if isinstance(request, PlacementGroupFactory):
        return request
    res = normalize_resources(request, what="resources_per_trial")
    return PlacementGroupFactory([res or {"CPU": 0.0}])
