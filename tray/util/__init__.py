"""Ray's ``ray.util``: helpers built on the Ray-style API."""

# ``queue`` is imported so ``tray.util.queue.Queue`` works after ``import tray.util``, as
# in Ray; it stays out of ``__all__`` so ``from tray.util import *`` cannot shadow the
# standard library's ``queue``.
from . import queue  # noqa: F401  (tray.util.queue, as in Ray)
from ._named import list_named_actors
from ._node_ip import get_node_ip_address
from .actor_pool import ActorPool
from .placement_group import (
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

# As in Ray, ``tray.util.placement_group`` is the function; its module is still imported
# with ``from tray.util.placement_group import PlacementGroup``.
__all__ = [
    "ActorPool",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "list_named_actors",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]
