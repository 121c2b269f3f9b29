"""Backends (Ray's ``ray.train.backend``): how a framework's process group is set up on the
worker group before ``train_loop_per_worker`` runs, and torn down after.

A backend is plain data sent to every worker. The controller asks it for each rank's
environment (``worker_env``: pure, from the group's layout) and then every worker runs
``on_worker_start`` at once (a process group's rendezvous needs all ranks). There is no
shutdown hook: a group ends with its processes, which takes the process group with it.
"""

from __future__ import annotations

from typing import Any

import attrs

from .context import TrainContext

__all__ = ["Backend", "BackendConfig", "WorkerSlot"]


@attrs.frozen
class WorkerSlot:
    """Where one rank runs: what the backend needs to know to wire the group."""

    rank: int
    node_id: str
    node_ip: str
    local_rank: int
    local_world_size: int
    node_rank: int
    pid: int
    gpu_ids: tuple[int, ...] = ()


class Backend:
    """Sets a framework up on each worker; the base does nothing (a plain data-parallel loop)."""

    needs_rendezvous_port = False
    preload_modules: tuple[str, ...] = ()  # imported in the background as soon as a worker starts

    def worker_env(self, slots: list[WorkerSlot], port: int | None, use_gpu: bool) -> list[dict[str, str]]:
        """Each rank's extra environment variables (pure)."""
        return [{} for _ in slots]

    def on_worker_start(self, context: TrainContext) -> None:
        """Runs in every worker at once, after ``worker_env`` is applied and before the loop."""


@attrs.define
class BackendConfig:
    """The configuration of a backend; ``backend_cls`` makes the backend the workers run."""

    def make_backend(self) -> Backend:
        """The backend object every worker runs (plain data)."""
        return self.backend_cls()

    @property
    def backend_cls(self) -> type[Backend]:
        return Backend

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)
