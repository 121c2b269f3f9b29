"""Search algorithms and search spaces (Ray's ``ray.tune.search``)."""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from typing import Any

from .basic_variant import BasicVariantGenerator, SearchAlgorithm, SearchGenerator
from .repeater import Repeater
from .sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
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
           "Repeater", "SearchAlgorithm", "SearchGenerator", "Searcher", "choice", "create_searcher", "grid_search",
           "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn", "quniform", "randint",
           "randn", "sample_from", "uniform"]
