"""DataContext: the process-wide knobs Ray Data exposes (``DataContext.get_current()``)."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import attrs


@attrs.define
class ExecutionResources:
    """Limits on what the streaming executor may use at once (None: derived from the cluster)."""

    cpu: float | None = None
    gpu: float | None = None
    object_store_memory: float | None = None


@attrs.define
class ExecutionOptions:
    """Ray's ``ExecutionOptions``: resource limits, ordering, progress output."""

    resource_limits: ExecutionResources = attrs.field(factory=ExecutionResources)
    # True here (Ray: False): outputs in input order unless asked otherwise, so results are
    # reproducible; False yields each operator's outputs as its tasks finish
    preserve_order: bool = True
    # one progress line per operator (Ray's default); False: only all-to-all operators and
    # the dataset as a whole
    verbose_progress: bool = True


@attrs.define
class DataContext:
    """Settings every dataset of this process reads when it executes (as Ray's DataContext).

    ``target_max_block_size`` splits a task's output into blocks no larger than it;
    ``target_min_block_size`` bounds how finely a read is split; ``read_op_min_num_blocks`` is the
    parallelism a read aims for; ``execution_options.resource_limits.object_store_memory`` is the
    budget of bytes in flight the executor shares among its operators (default: half the store).
    """

    target_max_block_size: int = 128 * 1024 * 1024
    target_min_block_size: int = 1 * 1024 * 1024
    target_shuffle_max_block_size: int = 1024 * 1024 * 1024
    read_op_min_num_blocks: int = 200
    execution_options: ExecutionOptions = attrs.field(factory=ExecutionOptions)
    enable_progress_bars: bool = True
    max_tasks_in_flight_per_actor: int = 4
    op_resource_reservation_ratio: float = 0.5
    use_push_based_shuffle: bool = False
    enable_tensor_extension_casting: bool = True

    _current: ClassVar[DataContext | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @staticmethod
    def get_current() -> DataContext:
        """The context of this process (made on first use)."""
        with DataContext._lock:
            if DataContext._current is None:
                DataContext._current = DataContext()
            return DataContext._current

    @staticmethod
    def _set_current(context: DataContext) -> None:
        with DataContext._lock:
            DataContext._current = context

    def copy(self) -> DataContext:
        return attrs.evolve(self, execution_options=attrs.evolve(
            self.execution_options, resource_limits=attrs.evolve(self.execution_options.resource_limits)))

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in attrs.fields_dict(type(self)):
            raise AttributeError(f"DataContext has no setting {name!r}")
        object.__setattr__(self, name, value)
