"""Search algorithms and search spaces (Ray's ``ray.tune.search``)."""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from typing import Any

from . import sample as _sample
from .basic_variant import BasicVariantGenerator, SearchAlgorithm, SearchGenerator
from .repeater import Repeater
from .sample import *  # noqa: F403 - the search-space functions, listed in sample.__all__
from .sample import Categorical, Domain, Float, Function, Integer
from .searcher import ConcurrencyLimiter, Searcher


def create_searcher(search_alg: str, **kwargs: Any) -> Any:
    """A searcher by name ("variant_generator", "random", "optuna")."""
    if search_alg in ("variant_generator", "random"):
        return BasicVariantGenerator(**kwargs)
    if search_alg == "optuna":
        from .optuna import OptunaSearch

        return OptunaSearch(**kwargs)
    raise ValueError(f"unknown search algorithm {search_alg!r}: one of variant_generator, random, optuna")


__all__ = ["BasicVariantGenerator", "Categorical", "ConcurrencyLimiter", "Domain", "Float", "Function", "Integer",
           "Repeater", "SearchAlgorithm", "SearchGenerator", "Searcher", "create_searcher", *_sample.__all__]
