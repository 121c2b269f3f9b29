"""IMPALA (Ray's ``ray.rllib.algorithms.impala``)."""

from .impala import IMPALA, IMPALAConfig

__all__ = ["IMPALA", "IMPALAConfig"]
