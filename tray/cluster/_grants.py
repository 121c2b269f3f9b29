"""What a node's scheduler answers a lease request: a worker, or another node to ask."""

from __future__ import annotations

from typing import Any, NamedTuple


class Granted(NamedTuple):
    """A worker of this node is the asker's until it gives the lease back."""

    lease_id: int
    worker_id: str
    executor: Any  # the worker's executor actor (an ActorRef)
    pid: int
    node_id: str
    gpus: tuple[int, ...] = ()  # the GPUs it holds on that node, by id (its CUDA_VISIBLE_DEVICES)


class Spill(NamedTuple):
    """No room here, but there is on that node: ask its scheduler instead."""

    scheduler: Any  # that node's scheduler (an ActorRef)
    node_id: str
