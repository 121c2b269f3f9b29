"""``OptunaSearch`` (Ray's ``ray.tune.search.optuna``): optuna's ask/tell behind tray's Searcher."""

from .optuna_search import OptunaSearch

__all__ = ["OptunaSearch"]
