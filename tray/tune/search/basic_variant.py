"""The default search: Ray's ``BasicVariantGenerator`` (grid expansion and random sampling of
the param space, ``num_samples`` times), and ``SearchGenerator``, which turns a ``Searcher``
into the same trial source. Both are picklable so a run's search survives a restore."""

from __future__ import annotations

import random
from typing import Any

from .searcher import Searcher
from .variant_generator import Path, format_vars, grid_points, merge, parse_space, resolve


class SearchAlgorithm:
    """What the controller asks for trials: ``next_trial(trial_id)`` -> ``(config, varied
    values, tag)``, or None when nothing can start now; ``is_finished()`` once no more will."""

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        return True

    def setup(self, param_space: dict[str, Any], num_samples: int) -> None:
        raise NotImplementedError

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Path, Any], str] | None:
        raise NotImplementedError

    def is_finished(self) -> bool:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    @property
    def total_samples(self) -> int | None:
        return None


class BasicVariantGenerator(SearchAlgorithm):
    def __init__(self, points_to_evaluate: list[dict[str, Any]] | None = None, max_concurrent: int = 0,
                 constant_grid_search: bool = False, random_state: int | random.Random | None = None) -> None:
        if points_to_evaluate is not None and not all(isinstance(p, dict) for p in points_to_evaluate):
            raise TypeError("points_to_evaluate must be a list of dicts")
        self._points = list(points_to_evaluate or [])
        self._max_concurrent = max_concurrent
        self._constant_grid_search = constant_grid_search
        self._rng = random_state if isinstance(random_state, random.Random) else random.Random(random_state)
        self._space: dict[str, Any] = {}
        self._grid: list[dict[Path, Any]] = [{}]
        self._num_samples = 1
        self._index = 0
        self._live: set[str] = set()
        self._constant_seeds: dict[int, float] = {}

    def setup(self, param_space: dict[str, Any], num_samples: int) -> None:
        parse_space(param_space)  # raises on what it cannot read, before anything runs
        self._space = param_space
        self._grid = grid_points(param_space)
        self._num_samples = num_samples

    @property
    def total_samples(self) -> int:
        return len(self._grid) * self._num_samples + len(self._points)

    def is_finished(self) -> bool:
        return self._index >= self.total_samples

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Path, Any], str] | None:
        if self.is_finished() or (self._max_concurrent and len(self._live) >= self._max_concurrent):
            return None
        i = self._index
        self._index += 1
        self._live.add(trial_id)
        if i < len(self._points):
            resolved, config = resolve(merge(self._space, self._points[i]), {}, self._rng)
            return config, resolved, f"{i}_{format_vars(resolved)}".rstrip("_")
        k = i - len(self._points)
        point = self._grid[k % len(self._grid)]
        rng = self._rng
        if self._constant_grid_search:  # the same random draws for every grid point of one sample
            seed = self._constant_seeds.setdefault(k // len(self._grid), self._rng.random())
            rng = random.Random(seed)
        resolved, config = resolve(self._space, point, rng)
        return config, resolved, f"{i}_{format_vars(resolved)}".rstrip("_")

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._live.discard(trial_id)


class SearchGenerator(SearchAlgorithm):
    """A ``Searcher`` as a trial source: its suggestions merged onto the param space."""

    def __init__(self, searcher: Searcher) -> None:
        if not isinstance(searcher, Searcher):
            raise TypeError(f"search_alg must be a tray.tune.search.Searcher, got {type(searcher).__name__}")
        self.searcher = searcher
        self._space: dict[str, Any] = {}
        self._num_samples = 1
        self._count = 0
        self._finished = False
        self._rng = random.Random()

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def setup(self, param_space: dict[str, Any], num_samples: int) -> None:
        grids, _ = parse_space(param_space)
        if grids:
            raise ValueError(f"grid_search is not supported with {type(self.searcher).__name__}: use "
                             "tune.choice, or the default search (no search_alg)")
        self._space = param_space
        self._num_samples = num_samples

    @property
    def total_samples(self) -> int:
        return self._num_samples

    def is_finished(self) -> bool:
        return self._finished or self._count >= self._num_samples

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Path, Any], str] | None:
        if self.is_finished():
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion == Searcher.FINISHED:
            self._finished = True
            return None
        if suggestion is None:
            return None
        if not isinstance(suggestion, dict):
            raise TypeError(f"{type(self.searcher).__name__}.suggest() must return a dict, None or "
                            f"Searcher.FINISHED, got {type(suggestion).__name__}")
        resolved, config = resolve(merge(self._space, suggestion), {}, self._rng)
        flat = _flat(suggestion)
        varied = {**resolved, **flat}
        i = self._count
        self._count += 1
        return config, varied, f"{i}_{format_vars(varied)}".rstrip("_")

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)


def _flat(d: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, (*prefix, k)))
        else:
            out[(*prefix, k)] = v
    return out
