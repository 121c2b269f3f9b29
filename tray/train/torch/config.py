"""``TorchConfig``: torch.distributed on the worker group, set up the way Ray Train does it.

Every rank gets ``MASTER_ADDR``/``MASTER_PORT`` (rank 0's node and a free port there),
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK`` and, with GPUs,
``CUDA_VISIBLE_DEVICES`` (the GPUs of every worker on its node, so ``cuda:local_rank`` is its own);
then ``torch.distributed.init_process_group`` runs on all ranks at once (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import attrs

from ..backend import Backend, BackendConfig, WorkerSlot
from ..context import TrainContext

__all__ = ["TorchConfig"]


def _check_backend(_: Any, __: Any, value: str | None) -> None:
    if value is not None and value not in ("gloo", "nccl", "mpi", "ucc", "xccl", "hccl"):
        raise ValueError(f"TorchConfig(backend=...) must be 'gloo', 'nccl' (or another torch.distributed backend), "
                         f"got {value!r}")


def _check_init_method(_: Any, __: Any, value: str) -> None:
    if value not in ("env", "tcp"):
        raise ValueError(f"TorchConfig(init_method=...) must be 'env' or 'tcp', got {value!r}")


@attrs.define
class TorchConfig(BackendConfig):
    """``backend``: None picks NCCL with GPUs, gloo without; ``init_method``: "env" or "tcp";
    ``timeout_s``: how long a collective may wait for the other ranks."""

    backend: str | None = attrs.field(default=None, validator=_check_backend)
    init_method: str = attrs.field(default="env", validator=_check_init_method)
    timeout_s: int = 1800

    @property
    def backend_cls(self) -> type[Backend]:
        return _TorchBackend

    def make_backend(self) -> Backend:
        return _TorchBackend(self.backend, self.init_method, self.timeout_s)


def _local_gpu_env(slots: list[WorkerSlot], slot: WorkerSlot) -> str:
    ids = sorted({g for s in slots if s.node_id == slot.node_id for g in s.gpu_ids})
    return ",".join(str(g) for g in ids)


@attrs.frozen
class _TorchBackend(Backend):
    backend: str | None
    init_method: str
    timeout_s: int

    needs_rendezvous_port = True
    preload_modules = ("torch.distributed",)

    def worker_env(self, slots: list[WorkerSlot], port: int | None, use_gpu: bool) -> list[dict[str, str]]:
        master = slots[0].node_ip
        out = []
        for s in slots:
            env = {"MASTER_ADDR": master, "MASTER_PORT": str(port), "RANK": str(s.rank),
                   "WORLD_SIZE": str(len(slots)), "LOCAL_RANK": str(s.local_rank),
                   "LOCAL_WORLD_SIZE": str(s.local_world_size), "NODE_RANK": str(s.node_rank),
                   "TRAY_TRAIN_BACKEND": self.resolved(use_gpu)}
            if use_gpu:
                env["CUDA_VISIBLE_DEVICES"] = _local_gpu_env(slots, s)
            out.append(env)
        return out

    def resolved(self, use_gpu: bool) -> str:
        return self.backend or ("nccl" if use_gpu else "gloo")

    def on_worker_start(self, context: TrainContext) -> None:
        import torch.distributed as dist

        backend = os.environ["TRAY_TRAIN_BACKEND"]
        if backend == "nccl":
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        if self.init_method == "env":
            init = "env://"
        else:
            init = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        if dist.is_initialized():
            dist.destroy_process_group()
        dist.init_process_group(backend=backend, init_method=init, rank=context.world_rank,
                                world_size=context.world_size, timeout=timedelta(seconds=self.timeout_s))
