"""Tune's errors (Ray's ``ray.tune.error``)."""

from __future__ import annotations


class TuneError(Exception):
    """A run could not do what it was asked (a trial that can never fit, failed trials, bad input)."""
