"""The worker group: ``num_workers`` TrainWorker actors in one placement group.

The group lives and dies as one (OTP's one_for_all): the controller tears down every worker
and the placement group when any worker fails, then starts a fresh group. Ranks are given
in node order (the node of rank 0 first), so ``local_rank``/``node_rank`` match Ray's.
"""

from __future__ import annotations

import logging
from typing import Any

import tray
from tray.util.placement_group import (
    PlacementGroup,
    placement_group,
    remove_placement_group,
)
from tray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ._placement import infeasible_reason
from ._worker import TrainWorker
from .backend import WorkerSlot

__all__ = ["WorkerGroup", "check_feasible"]

log = logging.getLogger("tray.train")

_RemoteWorker = tray.remote(TrainWorker)


def _node_totals() -> list[dict[str, float]]:
    return [dict(n["Resources"]) for n in tray.nodes() if n.get("Alive")]


def check_feasible(resources_per_worker: dict[str, float], num_workers: int, strategy: str) -> None:
    """ValueError at once when no arrangement of the cluster's nodes can ever hold the group."""
    reason = infeasible_reason([resources_per_worker] * num_workers, strategy, _node_totals())
    if reason is not None:
        raise ValueError(f"ScalingConfig cannot be satisfied: {reason}")


class WorkerGroup:
    """Start, address and tear down the group's actors."""

    def __init__(self, num_workers: int, resources_per_worker: dict[str, float], placement_strategy: str,
                 *, start_timeout_s: float = 600.0, preload: tuple[str, ...] = ()) -> None:
        self.num_workers = num_workers
        self.resources = dict(resources_per_worker)
        self.strategy = placement_strategy
        self._pg: PlacementGroup | None = None
        self.start_timeout_s = start_timeout_s
        self.preload = preload
        self.workers: list[Any] = []  # actor handles, by rank
        self.slots: list[WorkerSlot] = []

    def start(self) -> list[WorkerSlot]:
        pg = self._pg = placement_group([self.resources] * self.num_workers, strategy=self.strategy)
        tray.get(pg.ready(), timeout=self.start_timeout_s)
        opts: dict[str, Any] = {"num_cpus": self.resources.get("CPU", 0.0), "max_concurrency": 2,
                                "max_restarts": 0}
        if self.resources.get("GPU"):
            opts["num_gpus"] = self.resources["GPU"]
        extra = {k: v for k, v in self.resources.items() if k not in ("CPU", "GPU", "memory") and v > 0}
        if extra:
            opts["resources"] = extra
        if self.resources.get("memory"):
            opts["memory"] = self.resources["memory"]
        actors = [_RemoteWorker.options(
            **opts, scheduling_strategy=PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=i)).remote(self.preload, self.resources.get("CPU", 1.0))
            for i in range(self.num_workers)]
        self.workers = actors
        infos = tray.get([a.info.remote() for a in actors], timeout=self.start_timeout_s)
        ips = {n["NodeID"]: n["NodeManagerAddress"] for n in tray.nodes()}
        self.workers, self.slots = self._assign_ranks(actors, infos, ips)
        return self.slots

    def _assign_ranks(self, actors: list[Any], infos: list[dict[str, Any]],
                      ips: dict[str, str]) -> tuple[list[Any], list[WorkerSlot]]:
        node_order: list[str] = []
        for info in infos:
            if info["node_id"] not in node_order:
                node_order.append(info["node_id"])
        # by node, and on a node by the GPUs each holds (local rank k uses the node's k-th GPU)
        order = sorted(range(len(actors)), key=lambda i: (node_order.index(infos[i]["node_id"]),
                                                          tuple(infos[i]["gpu_ids"])))
        per_node = {n: sum(1 for i in infos if i["node_id"] == n) for n in node_order}
        seen: dict[str, int] = {}
        slots = []
        for rank, i in enumerate(order):
            node = infos[i]["node_id"]
            local = seen.get(node, 0)
            seen[node] = local + 1
            ids = tuple(infos[i]["gpu_ids"])  # its own, as its node gave them
            slots.append(WorkerSlot(rank=rank, node_id=node, node_ip=ips.get(node, "127.0.0.1"), local_rank=local,
                                    local_world_size=per_node[node], node_rank=node_order.index(node),
                                    pid=infos[i]["pid"], gpu_ids=ids))
        return [actors[i] for i in order], slots

    def shutdown(self) -> None:
        """Kill every worker (their processes exit) and give the placement group back."""
        for a in self.workers:
            try:
                tray.kill(a)
            except Exception as exc:  # noqa: BLE001 - already dead
                log.debug("Train: killing a worker: %s", exc)
        self.workers, self.slots = [], []
        if self._pg is not None:
            try:
                remove_placement_group(self._pg)
            except Exception as exc:  # noqa: BLE001 - the cluster is gone: nothing to give back
                log.debug("Train: removing the placement group: %s", exc)
            self._pg = None

    def describe(self, rank: int) -> str:
        if rank < len(self.slots):
            s = self.slots[rank]
            return f"worker rank {rank} (pid {s.pid}, node {s.node_id}, ip {s.node_ip})"
        return f"worker rank {rank}"
