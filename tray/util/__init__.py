"""Ray's ``ray.util``: helpers built on the Ray-style API."""

# ``queue`` is imported so ``tray.util.queue.Queue`` works after ``import tray.util``, as
# in Ray; it stays out of ``__all__`` so ``from tray.util import *`` cannot shadow the
# standard library's ``queue``.
from . import queue  # noqa: F401  (tray.util.queue, as in Ray)
from ._helpers import as_completed, map_unordered
from ._named import list_named_actors
from ._node_ip import get_node_ip_address
from ._serialization import deregister_serializer, inspect_serializability, register_serializer
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
    "as_completed",
    "deregister_serializer",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "inspect_serializability",
    "list_named_actors",
    "map_unordered",
    "placement_group",
    "placement_group_table",
    "register_serializer",
    "remove_placement_group",
]
