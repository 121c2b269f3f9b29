"""A uniform replay buffer of transitions in numpy ring arrays (allocated on the first add)."""

from __future__ import annotations

from typing import Any

import numpy as np


class ReplayBuffer:
    """Keeps the last ``capacity`` transitions; ``sample(n)`` draws uniformly with replacement."""

    def __init__(self, capacity: int = 50_000, seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._cols: dict[str, np.ndarray] | None = None
        self._next = 0
        self._size = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._size

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Add flat transitions (every column's first axis is the transition; the first add fixes the columns)."""
        n = len(batch["rewards"])
        if n == 0:
            return
        if self._cols is None:
            self._cols = {k: np.empty((self.capacity, *np.asarray(v).shape[1:]), np.asarray(v).dtype)
                          for k, v in batch.items()}
        if set(batch) != set(self._cols):
            raise ValueError(f"replay columns {sorted(batch)} differ from the buffer's {sorted(self._cols)}")
        idx = (self._next + np.arange(n)) % self.capacity
        for k in self._cols:
            self._cols[k][idx] = batch[k]
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self.capacity, self._size + n)

    def sample(self, n: int) -> dict[str, np.ndarray]:
        if self._cols is None or self._size == 0:
            raise ValueError("sample() from an empty replay buffer")
        idx = self._rng.integers(0, self._size, n)
        return {k: v[idx] for k, v in self._cols.items()}

    def get_state(self) -> dict[str, Any]:
        return {"cols": None if self._cols is None else {k: v[: self._size].copy() for k, v in self._cols.items()},
                "next": self._next, "size": self._size}

    def set_state(self, state: dict[str, Any]) -> None:
        self._cols = None
        self._next = self._size = 0
        if state["cols"] is not None:
            self._cols = {k: np.empty((self.capacity, *v.shape[1:]), v.dtype) for k, v in state["cols"].items()}
            for k, v in state["cols"].items():
                self._cols[k][: len(v)] = v
            self._size, self._next = state["size"], state["next"]
