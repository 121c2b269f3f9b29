"""Search algorithms and search spaces (Ray's ``ray.tune.search``)."""

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

__all__ = ["Categorical", "Domain", "Float", "Function", "Integer", "choice", "grid_search", "lograndint",
           "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn", "quniform", "randint", "randn",
           "sample_from", "uniform"]
