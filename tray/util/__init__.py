"""Ray's ``ray.util``: helpers built on the Ray-style API."""

# ``queue`` is imported so ``tray.util.queue.Queue`` works after ``import tray.util``, as
# in Ray; it stays out of ``__all__`` so ``from tray.util import *`` cannot shadow the
# standard library's ``queue``.
from . import queue  # noqa: F401  (tray.util.queue, as in Ray)
from .actor_pool import ActorPool

__all__ = ["ActorPool"]
