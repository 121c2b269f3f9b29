"""``LightGBMConfig``: the worker group joined by LightGBM's socket network, as Ray Train does it.

Every worker picks a free port on its node while the backend is set up and the ranks swap their
``ip:port`` through the cluster's KV table; ``get_network_params()`` in the loop then gives
``machines`` (every rank's address, in rank order), ``local_listen_port`` and ``num_machines``,
which the loop merges into ``lightgbm.train``'s params (with ``tree_learner="data_parallel"``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import attrs

from ..._air.session import TrainContext
from .._worker import free_port, run_loop
from ..backend import Backend, BackendConfig, WorkerSlot

__all__ = ["LightGBMConfig", "get_network_params"]

_KV_NAMESPACE = "_tray_train_lightgbm"


@attrs.define
class LightGBMConfig(BackendConfig):
    """``timeout_s``: how long the workers wait for each other's addresses when the group starts."""

    timeout_s: int = 300

    @property
    def backend_cls(self) -> type[Backend]:
        return _LightGBMBackend

    def make_backend(self) -> Backend:
        return _LightGBMBackend(self.timeout_s)


@attrs.frozen
class _LightGBMBackend(Backend):
    timeout_s: int

    needs_rendezvous_port = True  # only names this group's start (keys in the KV table), nothing listens on it
    preload_modules = ("lightgbm",)

    def worker_env(self, slots: list[WorkerSlot], port: int | None, use_gpu: bool) -> list[dict[str, str]]:
        group = f"{slots[0].node_ip}:{port}:{slots[0].pid}"
        return [{"TRAY_LGBM_GROUP": group, "TRAY_LGBM_IP": s.node_ip, "TRAY_LGBM_RANK": str(s.rank),
                 "TRAY_LGBM_WORLD_SIZE": str(len(slots))} for s in slots]

    def on_worker_start(self, context: TrainContext) -> None:
        from ...lowlevel import kv_get, kv_put

        group, world = os.environ["TRAY_LGBM_GROUP"], int(os.environ["TRAY_LGBM_WORLD_SIZE"])
        port = free_port()
        kv_put(f"{group}/{context.world_rank}", f"{os.environ['TRAY_LGBM_IP']}:{port}".encode(),
               namespace=_KV_NAMESPACE)
        deadline = time.monotonic() + self.timeout_s
        machines: list[str] = []
        for rank in range(world):
            while (value := kv_get(f"{group}/{rank}", namespace=_KV_NAMESPACE)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"LightGBM: rank {rank} did not publish its address in {self.timeout_s} s")
                time.sleep(0.02)
            machines.append(value.decode())
        os.environ["TRAY_LGBM_MACHINES"] = ",".join(machines)
        os.environ["TRAY_LGBM_PORT"] = str(port)


def get_network_params() -> dict[str, Any]:
    """LightGBM's network parameters for this worker (Ray's ``get_network_params``): merge them into
    ``lightgbm.train``'s params. Empty outside a distributed group (``num_workers=0``)."""
    if "TRAY_LGBM_MACHINES" not in os.environ:
        return {}
    machines = os.environ["TRAY_LGBM_MACHINES"]
    return {"machines": machines, "local_listen_port": int(os.environ["TRAY_LGBM_PORT"]),
            "num_machines": len(machines.split(","))}


@attrs.frozen
class NetworkLoop:
    """The user's loop; rank 0 first clears the group's addresses from the KV table (every rank read
    them during set-up, which ends before any loop starts)."""

    fn: Callable[..., Any]

    def __call__(self, config: dict[str, Any]) -> Any:
        if os.environ.get("TRAY_LGBM_RANK") == "0" and "TRAY_LGBM_GROUP" in os.environ:
            from ...lowlevel import kv_del

            kv_del(os.environ["TRAY_LGBM_GROUP"] + "/", namespace=_KV_NAMESPACE, by_prefix=True)
        return run_loop(self.fn, config)
