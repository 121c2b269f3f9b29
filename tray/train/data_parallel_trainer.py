"""``DataParallelTrainer`` (Ray's ``ray.train.data_parallel_trainer``): run one
``train_loop_per_worker`` on ``num_workers`` workers, with a backend wiring them together.
``TorchTrainer`` is this with torch.distributed as the backend."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .._air.checkpoint import Checkpoint
from .._air.config import RunConfig, ScalingConfig
from .._air.result import Result
from ._controller import RunSpec, TrainController
from ._storage import StorageContext
from .backend import BackendConfig
from .base_trainer import TRAINER_FILE, BaseTrainer

__all__ = ["DataParallelTrainer"]


class DataParallelTrainer(BaseTrainer):
    """``fit()`` starts the worker group, runs the loop on every rank and returns a ``Result``."""

    def __init__(self, train_loop_per_worker: Callable[..., Any], *, train_loop_config: dict[str, Any] | None = None,
                 backend_config: BackendConfig | None = None, scaling_config: ScalingConfig | None = None,
                 run_config: RunConfig | None = None, datasets: dict[str, Any] | None = None,
                 dataset_config: Any = None, metadata: dict[str, Any] | None = None,
                 resume_from_checkpoint: Checkpoint | None = None) -> None:
        self._train_loop_per_worker = train_loop_per_worker
        self._train_loop_config = train_loop_config
        self._backend_config = backend_config if backend_config is not None else BackendConfig()
        if dataset_config is not None:
            raise NotImplementedError("dataset_config= is not supported yet: every dataset is split across "
                                      "the workers (Ray's default DataConfig)")
        super().__init__(scaling_config=scaling_config, run_config=run_config, datasets=datasets,
                         metadata=metadata, resume_from_checkpoint=resume_from_checkpoint)

    def _validate(self) -> None:
        super()._validate()
        if not callable(self._train_loop_per_worker):
            raise TypeError("train_loop_per_worker must be a function taking no argument or a config dict, "
                            f"got {type(self._train_loop_per_worker).__name__}")
        if self._train_loop_config is not None and not isinstance(self._train_loop_config, dict):
            raise TypeError(f"train_loop_config must be a dict, got {type(self._train_loop_config).__name__}")
        if not isinstance(self._backend_config, BackendConfig):
            raise TypeError(f"backend_config must be a BackendConfig, got {type(self._backend_config).__name__}")

    @property
    def train_loop_per_worker(self) -> Callable[..., Any]:
        return self._train_loop_per_worker

    @property
    def train_loop_config(self) -> dict[str, Any] | None:
        return self._train_loop_config

    def _spec(self, storage: StorageContext) -> RunSpec:
        return RunSpec(fn=self._train_loop_per_worker, config=copy.deepcopy(self._train_loop_config),
                       scaling=self.scaling_config, run_config=self.run_config,
                       backend=self._backend_config.make_backend(), storage=storage, datasets=dict(self.datasets),
                       resume_from=self.resume_from_checkpoint, metadata=self.metadata)

    def _storage(self) -> StorageContext:
        if self._restored_path is not None:
            st = StorageContext(self._restored_path, self.run_config.name or "")
            st.experiment_name = st.trial_name = st.run_path.rstrip("/").rsplit("/", 1)[-1]
            return st
        name = self.run_config.name or self._default_name()
        return StorageContext.for_run(self.run_config.storage_path, name)

    def fit(self) -> Result:
        """Train to the end; raises TrainingFailedError when the workers failed past max_failures."""
        import cloudpickle

        import tray

        if self.scaling_config.num_workers > 0 and not tray.is_initialized():
            tray.init()  # as Ray: the first remote work starts a local cluster (a local run needs none)
        storage = self._storage()
        controller = TrainController(self._spec(storage))
        storage.makedirs()
        if self._restored_path is not None:
            controller.load_state()
        else:
            saved = copy.copy(self)
            saved.datasets = {}
            storage.write_bytes(TRAINER_FILE, cloudpickle.dumps(saved))
        return controller.run()
