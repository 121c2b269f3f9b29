"""EnvContext (the ``env_config`` an env receives, plus where it runs) and the env spec -> creator step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from .old_gym import adapt
from .registry import get_env_creator


class EnvContext(dict):
    """``env_config`` as a dict, plus ``worker_index`` (0: the main process), ``num_workers`` and
    ``vector_index`` (the env's place in its runner's vector), as Ray passes it."""

    def __init__(self, env_config: dict | None, worker_index: int = 0, num_workers: int = 0,
                 vector_index: int = 0) -> None:
        super().__init__(env_config or {})
        self.worker_index = worker_index
        self.num_workers = num_workers
        self.vector_index = vector_index

    def copy_with_overrides(self, *, vector_index: int | None = None) -> EnvContext:
        return EnvContext(dict(self), self.worker_index, self.num_workers,
                          self.vector_index if vector_index is None else vector_index)

    def __reduce__(self) -> Any:
        return (EnvContext, (dict(self), self.worker_index, self.num_workers, self.vector_index))


def env_name(env: Any) -> str:
    """How messages name an env spec."""
    if isinstance(env, str):
        return repr(env)
    return getattr(env, "__qualname__", None) or repr(env)


class EnvCreator:
    """Picklable ``creator(ctx) -> gymnasium env`` for an env spec, resolved once in the driver."""

    def __init__(self, env: Any) -> None:
        self.name = env_name(env)
        self._registered: Callable[[Any], Any] | None = None
        self._gym_id: str | None = None
        self._callable: Callable[[Any], Any] | None = None
        if isinstance(env, str):
            self._registered = get_env_creator(env)
            if self._registered is None:
                if env not in gym.registry:
                    raise ValueError(f"env {env!r} is neither registered (tune.register_env) nor a gymnasium id")
                self._gym_id = env
        elif callable(env):
            self._callable = env
        else:
            raise TypeError(f"env must be a gymnasium id, a registered name or an env class, got {env!r}")

    def __call__(self, ctx: EnvContext) -> gym.Env:
        if self._gym_id is not None:
            raw = gym.make(self._gym_id, **dict(ctx))
        else:
            fn = self._registered or self._callable
            assert fn is not None
            raw = fn(ctx)
        return adapt(raw, self.name)
