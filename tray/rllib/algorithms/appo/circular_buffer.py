"""APPO's circular buffer of train batches (the "N x K" replay of the IMPALA/APPO papers). Pure.

It holds at most ``num_batches`` (N) batches; ``sample()`` draws one of them uniformly, and a
batch drawn ``iterations_per_batch`` (K) times leaves the buffer. A batch added to a full buffer
pushes out the oldest, however often that one was drawn.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np


class CircularBuffer:
    def __init__(self, num_batches: int, iterations_per_batch: int, seed: int | None = None) -> None:
        if num_batches < 1 or iterations_per_batch < 1:
            raise ValueError(f"circular_buffer_num_batches ({num_batches}) and circular_buffer_iterations_per_batch "
                             f"({iterations_per_batch}) must both be >= 1")
        self.num_batches = num_batches
        self.iterations_per_batch = iterations_per_batch
        self._slots: collections.deque[list[Any]] = collections.deque()  # [batch, times drawn]
        self._rng = np.random.default_rng(seed)
        self.num_added = 0
        self.num_dropped = 0  # pushed out before being drawn K times

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, batch: Any) -> None:
        if len(self._slots) == self.num_batches:
            self._slots.popleft()
            self.num_dropped += 1
        self._slots.append([batch, 0])
        self.num_added += 1

    def sample(self) -> Any:
        """A uniformly drawn batch; raises IndexError when the buffer is empty."""
        if not self._slots:
            raise IndexError("sample() from an empty circular buffer")
        i = int(self._rng.integers(len(self._slots)))
        slot = self._slots[i]
        slot[1] += 1
        if slot[1] >= self.iterations_per_batch:
            del self._slots[i]
        return slot[0]
