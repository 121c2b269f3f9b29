"""N-step transitions for Q-learning, built as fragments arrive (pure numpy and Python).

A runner's env vectors are streams cut into fragments; an n-step transition may span two
fragments, so each stream keeps the last steps whose n-step window is still open. A transition
``(s_t, a_t, R, s_{t+k}, terminated, gamma^k)`` has ``R = sum_{j<k} gamma^j r_{t+j}`` with ``k = n``,
or fewer when the episode ends (terminated or truncated) first. A stream whose next fragment does
not continue it (its runner was replaced and reset its envs) closes its open windows as they are.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Any

import numpy as np

# one step: obs, action, reward, next_obs, terminated
_Step = tuple[np.ndarray, Any, float, np.ndarray, bool]


class NStepBuilder:
    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self._open: dict[Hashable, collections.deque[_Step]] = {}

    def add_fragment(self, key: Hashable, batch: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """The transitions whose window closed with this time-major fragment ``[T, num_envs, ...]``
        of stream ``key`` (a runner), as flat columns incl. ``discounts`` (``gamma^k``)."""
        if n < 1:
            raise ValueError(f"n_step must be >= 1, got {n}")
        out: list[tuple[np.ndarray, Any, float, np.ndarray, bool, float]] = []
        T, N = batch["rewards"].shape
        for i in range(N):
            q = self._open.setdefault((key, i), collections.deque())
            if q and not np.array_equal(q[-1][3], batch["obs"][0, i]):
                while q:  # not a continuation: close what is open at its last step
                    out.append(self._emit(q))
                    q.popleft()
            for t in range(T):
                ended = bool(batch["terminateds"][t, i] or batch["truncateds"][t, i])
                q.append((batch["obs"][t, i], batch["actions"][t, i], float(batch["rewards"][t, i]),
                          batch["next_obs"][t, i], bool(batch["terminateds"][t, i])))
                if ended:
                    while q:
                        out.append(self._emit(q))
                        q.popleft()
                while len(q) >= n:
                    out.append(self._emit(q, n))
                    q.popleft()
        return _columns(out, batch)

    def _emit(self, q: collections.deque[_Step], n: int | None = None) -> tuple[np.ndarray, Any, float, np.ndarray,
                                                                              bool, float]:
        steps = list(q)[: n or len(q)]
        ret = sum(self.gamma**j * s[2] for j, s in enumerate(steps))
        last = steps[-1]
        return steps[0][0], steps[0][1], ret, last[3], last[4], self.gamma ** len(steps)

    def num_open(self) -> int:
        return sum(len(q) for q in self._open.values())

    def get_state(self) -> dict[str, Any]:
        return {"open": {k: list(q) for k, q in self._open.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self._open = {k: collections.deque(v) for k, v in state["open"].items()}


def _columns(rows: list[tuple], like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    obs_shape, act = like["obs"].shape[2:], like["actions"]
    if not rows:
        return {"obs": np.empty((0, *obs_shape), like["obs"].dtype),
                "actions": np.empty((0, *act.shape[2:]), act.dtype),
                "rewards": np.empty(0, np.float32), "next_obs": np.empty((0, *obs_shape), like["obs"].dtype),
                "terminateds": np.empty(0, bool), "discounts": np.empty(0, np.float32)}
    obs, actions, rewards, next_obs, terms, discounts = zip(*rows, strict=True)
    return {"obs": np.stack(obs), "actions": np.asarray(actions, act.dtype), "rewards": np.asarray(rewards, np.float32),
            "next_obs": np.stack(next_obs), "terminateds": np.asarray(terms, bool),
            "discounts": np.asarray(discounts, np.float32)}
