"""Ray's ``ray.experimental``: lower-level interfaces, kept for code written for Ray."""

from . import internal_kv

__all__ = ["internal_kv"]
