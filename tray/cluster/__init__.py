"""A node's moving parts: resources, the scheduler that leases workers, the worker pool."""

from ._node import LocalNode, StoreConfig, node_resources
from ._scheduler import POOL_NAME, SCHEDULER_NAME, NodeScheduler

__all__ = ["LocalNode", "NodeScheduler", "POOL_NAME", "SCHEDULER_NAME", "StoreConfig", "node_resources"]
