"""A Train worker: one actor process of the group, running ``train_loop_per_worker`` in a thread.

The actor is threaded (``max_concurrency=2``) so the controller's ``next_event`` call can wait
for the loop's next report while the loop runs. The backend (torch.distributed) is set up by
``setup_backend`` on every rank at once, before ``start``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from .._air.checkpoint import Checkpoint
from .._air.session import TrainContext, init_session, shutdown_session
from ._session import Event, EventChannel, WorkerSession
from ._storage import StorageContext

__all__ = ["TrainWorker", "free_port", "run_loop"]


def free_port() -> int:
    """A TCP port free on this machine now (for the rendezvous of rank 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def run_loop(fn: Callable[..., Any], config: dict[str, Any] | None) -> Any:
    """Call the user's loop as Ray does: with the config when it takes an argument."""
    import inspect

    try:
        takes_config = len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        takes_config = True
    return fn(config if config is not None else {}) if takes_config else fn()


class TrainWorker:
    """The actor class (made remote by the worker group)."""

    def __init__(self, preload: tuple[str, ...] = (), num_cpus: float = 1.0) -> None:
        self._channel: EventChannel | None = None
        self._thread: threading.Thread | None = None
        # as Ray Train: math libraries use the worker's CPUs, not every core (read when torch is imported)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, int(num_cpus))))
        if preload:  # overlap the framework's import (seconds for torch) with the group's set-up calls
            import importlib

            threading.Thread(target=lambda: [importlib.import_module(m) for m in preload], daemon=True,
                             name="train-preload").start()

    def info(self) -> dict[str, Any]:
        import tray

        return {"pid": os.getpid(), "node_id": tray.get_runtime_context().get_node_id(),
                "gpu_ids": tray.get_gpu_ids()}

    def free_port(self) -> int:
        return free_port()

    def setup_backend(self, backend: Any, env: dict[str, str], context: TrainContext) -> None:
        os.environ.update(env)
        backend.on_worker_start(context)

    def start(self, fn: Callable[..., Any], config: dict[str, Any] | None, context: TrainContext,
              checkpoint: Checkpoint | None, storage: StorageContext, dataset_shards: dict[str, Any],
              first_report_index: int) -> None:
        """Start the loop in its own thread; its events come out through ``next_event``."""
        channel = self._channel = EventChannel()
        session = WorkerSession(context, checkpoint, storage, channel.put, dataset_shards, first_report_index)

        def body() -> None:
            init_session(session)
            try:
                value = run_loop(fn, config)
            except BaseException as exc:  # noqa: BLE001 - the controller decides what a failure means
                channel.put(exc)
            else:
                channel.put(Event("done", value=value))
            finally:
                shutdown_session()

        self._thread = threading.Thread(target=body, name="train_loop_per_worker", daemon=True)
        self._thread.start()

    def next_event(self) -> Event:
        assert self._channel is not None, "start() first"
        return self._channel.take()
