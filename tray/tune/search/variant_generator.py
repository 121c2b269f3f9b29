"""Turning a ``param_space`` into trial configs (pure: no I/O, seeded by a ``random.Random``).

Every ``grid_search`` is expanded (cartesian product, the first key varying fastest, as Ray), and
for each grid point the sampled domains are drawn; ``sample_from`` functions run last, seeing the
rest of the config as ``spec.config``. ``num_samples`` repeats the whole grid."""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterator
from typing import Any

from .sample import Domain, Function

Path = tuple[Any, ...]


class _AttrDict(dict):
    """``spec.config.lr`` as well as ``spec["config"]["lr"]`` for ``sample_from`` functions."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _AttrDict(value) if isinstance(value, dict) and not isinstance(value, _AttrDict) else value


_FOREIGN_HINTS = ("ray.", "hyperopt", "optuna.distributions", "skopt", "nevergrad", "ConfigSpace")


def _looks_like_search_space(value: Any) -> bool:
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    if any(module.startswith(h) for h in _FOREIGN_HINTS):
        return True
    return any(hasattr(value, a) for a in ("is_grid", "get_sampler")) and not isinstance(value, Domain)


def parse_space(spec: Any, prefix: Path = ()) -> tuple[list[tuple[Path, list[Any]]], list[tuple[Path, Domain]]]:
    """``(grid variables, sampled domains)`` of ``spec``, each with its key path; raises
    ValueError naming the key of anything that looks like a search space tray does not know."""
    grids: list[tuple[Path, list[Any]]] = []
    domains: list[tuple[Path, Domain]] = []
    if isinstance(spec, dict):
        if set(spec) == {"grid_search"}:
            values = spec["grid_search"]
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"config{_path_str(prefix)}: grid_search needs a non-empty list, got {values!r}")
            return [(prefix, list(values))], []
        for key, value in spec.items():
            g, d = parse_space(value, (*prefix, key))
            grids += g
            domains += d
    elif isinstance(spec, (list, tuple)):
        for i, value in enumerate(spec):
            g, d = parse_space(value, (*prefix, i))
            grids += g
            domains += d
    elif isinstance(spec, Domain):
        if spec.is_grid():
            grids.append((prefix, list(spec.categories)))  # type: ignore[attr-defined]
        else:
            domains.append((prefix, spec))
    elif _looks_like_search_space(spec):
        raise ValueError(f"config{_path_str(prefix)} is {type(spec).__module__}.{type(spec).__qualname__}, a "
                         "search-space object tray.tune does not know: use tune.uniform/choice/randint/"
                         "grid_search/sample_from... (tray.tune.search.sample)")
    return grids, domains


def _path_str(path: Path) -> str:
    return "".join(f"[{k!r}]" for k in path)


def _set(config: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


def _copy_space(spec: Any) -> Any:
    """A copy of the space's containers, keeping Domain objects (and other leaves) shared."""
    if isinstance(spec, dict):
        return {k: _copy_space(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_copy_space(v) for v in spec]
    if isinstance(spec, tuple):
        return [_copy_space(v) for v in spec]
    return spec


def _restore_tuples(spec: Any, config: Any) -> Any:
    if isinstance(spec, dict) and isinstance(config, dict):
        return {k: _restore_tuples(spec.get(k), v) for k, v in config.items()}
    if isinstance(spec, (list, tuple)) and isinstance(config, list):
        items = [_restore_tuples(s, v) for s, v in zip(spec, config, strict=False)]
        return tuple(items) if isinstance(spec, tuple) else items
    return config


def resolve(spec: dict[str, Any], grid_point: dict[Path, Any], rng: random.Random
            ) -> tuple[dict[Path, Any], dict[str, Any]]:
    """One config of ``spec`` at ``grid_point``: ``(resolved variables by path, config)``."""
    grids, domains = parse_space(spec)
    config = _copy_space(spec)
    resolved: dict[Path, Any] = {}
    for path, value in grid_point.items():
        _set(config, path, copy.deepcopy(value))
        resolved[path] = value
    functions = [(p, d) for p, d in domains if d.is_function()]
    for path, domain in domains:
        if not domain.is_function():
            value = domain.sample(None, random_state=rng)
            _set(config, path, value)
            resolved[path] = value
    pending = functions
    for _ in range(len(functions) + 1):
        if not pending:
            break
        still = []
        for path, domain in pending:
            try:
                value = domain.sample(_AttrDict(config=_AttrDict(config)), random_state=rng)
            except (KeyError, AttributeError, TypeError):
                still.append((path, domain))
                continue
            if isinstance(value, Domain):
                value = value.sample(None, random_state=rng)
            _set(config, path, value)
            resolved[path] = value
        if len(still) == len(pending):  # no progress: run once more to surface the user's error
            for path, domain in still:
                assert isinstance(domain, Function)
                _set(config, path, domain.sample(_AttrDict(config=_AttrDict(config)), random_state=rng))
            still = []
        pending = still
    return resolved, _restore_tuples(spec, config)


def grid_points(spec: dict[str, Any]) -> list[dict[Path, Any]]:
    """Every point of the grid, the first grid key varying fastest (as Ray orders them)."""
    grids, _ = parse_space(spec)
    if not grids:
        return [{}]
    paths = [p for p, _ in grids]
    points = []
    for combo in itertools.product(*[v for _, v in reversed(grids)]):
        points.append(dict(zip(reversed(paths), combo, strict=True)))
    return points


def count_variants(spec: dict[str, Any], num_samples: int) -> int:
    return len(grid_points(spec)) * num_samples


def generate_variants(spec: dict[str, Any], num_samples: int = 1, rng: random.Random | None = None
                      ) -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
    """``num_samples`` passes over the grid, each point with freshly sampled domains."""
    rng = rng or random.Random()
    points = grid_points(spec)
    for _ in range(num_samples):
        for point in points:
            yield resolve(spec, point, rng)


def _clean(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4f}" if 1e-4 <= abs(value) < 1e6 or value == 0 else f"{value:.4e}"
    else:
        text = str(value)
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)[:40]


def format_vars(resolved: dict[Path, Any]) -> str:
    """``lr=0.0010,momentum=0.9000`` for a trial's name: the last key of each varied path."""
    parts = []
    for path, value in sorted(resolved.items(), key=lambda kv: "/".join(map(str, kv[0]))):
        if not path:
            continue
        parts.append(f"{path[-1]}={_clean(value)}")
    return ",".join(parts)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys set, recursively (points_to_evaluate onto the space)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and set(out[k]) != {"grid_search"}:
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def flatten_space(spec: Any, prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """``{"a/b": leaf}`` for every leaf of nested dicts (searchers name parameters this way)."""
    out: dict[str, Any] = {}
    if isinstance(spec, dict) and set(spec) != {"grid_search"}:
        for k, v in spec.items():
            out.update(flatten_space(v, f"{prefix}{k}{sep}", sep))
    elif prefix:
        out[prefix[:-len(sep)]] = spec
    return out


def unflatten(flat: dict[str, Any], sep: str = "/") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(sep)
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out
