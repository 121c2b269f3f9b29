"""Old gym-API envs adapted at the edge to gymnasium's API.

Ray 2.60 rejects an env whose ``reset()`` returns only the observation, whose ``step()`` returns
a 4-tuple, or whose spaces come from the ``gym`` package; tray wraps such an env once, with one
warning saying what was adapted, and the rest of tray.rllib sees a plain gymnasium env.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

logger = logging.getLogger("tray.rllib")


def convert_space(space: Any) -> gym.Space:
    """A ``gym.spaces`` space (or anything shaped like one) as the equal gymnasium space."""
    if isinstance(space, gym.Space):
        return space
    kind = type(space).__name__
    if kind == "Discrete":
        return gym.spaces.Discrete(int(space.n), start=int(getattr(space, "start", 0)))
    if kind == "Box":
        return gym.spaces.Box(low=np.asarray(space.low), high=np.asarray(space.high), shape=space.shape,
                              dtype=space.dtype)
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(np.asarray(space.nvec))
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(space.n)
    if kind == "Tuple":
        return gym.spaces.Tuple([convert_space(s) for s in space.spaces])
    if kind == "Dict":
        return gym.spaces.Dict({k: convert_space(s) for k, s in space.spaces.items()})
    raise TypeError(f"cannot convert space {space!r} ({type(space).__module__}.{kind}) to a gymnasium space")


def _takes(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _as_obs(obs: Any, space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Box):
        return np.asarray(obs, dtype=space.dtype).reshape(space.shape)
    if isinstance(space, gym.spaces.Discrete):
        return int(np.asarray(obs).item())
    return obs


class OldGymAPIAdapter(gym.Env):
    """Presents an old-API env (``reset() -> obs``, ``step() -> (obs, reward, done, info)``) as gymnasium's.

    An old ``done`` becomes ``terminated`` unless ``info["TimeLimit.truncated"]`` says the episode
    was cut short (gym's own convention), and then ``truncated``.
    """

    def __init__(self, env: Any, adapted: list[str]) -> None:
        self.env = env
        self.adapted = adapted
        self.observation_space = convert_space(env.observation_space)
        self.action_space = convert_space(env.action_space)
        self._old_reset = "reset() returning the observation only" in adapted
        self._old_step: bool | None = None  # learnt from the first step's tuple length
        self._reset_takes_seed = _takes(env.reset, "seed")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None and not self._reset_takes_seed:
            if hasattr(self.env, "seed"):
                self.env.seed(seed)
            out = self.env.reset()
        elif self._reset_takes_seed:
            out = self.env.reset(seed=seed) if options is None else self.env.reset(seed=seed, options=options)
        else:
            out = self.env.reset()
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict) and not self._old_reset:
            obs, info = out
        else:
            obs, info = out, {}
        return _as_obs(obs, self.observation_space), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if isinstance(self.action_space, gym.spaces.Discrete):
            action = int(action)
        out = self.env.step(action)
        if len(out) == 4:
            obs, reward, done, info = out
            info = dict(info or {})
            truncated = bool(info.pop("TimeLimit.truncated", False))
            return _as_obs(obs, self.observation_space), float(reward), bool(done) and not truncated, truncated, info
        obs, reward, terminated, truncated, info = out
        return _as_obs(obs, self.observation_space), float(reward), bool(terminated), bool(truncated), dict(info or {})

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()


def needs_adapting(env: Any) -> list[str]:
    """What about ``env`` is the old API (empty: a gymnasium env, used as it is)."""
    what = []
    if not isinstance(env.observation_space, gym.Space) or not isinstance(env.action_space, gym.Space):
        what.append("gym.spaces converted to gymnasium.spaces")
    if not _takes(env.reset, "seed"):
        what.append("reset() returning only the observation")
    if not isinstance(env, gym.Env):
        what.append("step() read as gym's (a 4-tuple's done split into terminated/truncated)")
    return what


_warned: set[str] = set()


def adapt(env: Any, name: str) -> gym.Env:
    """``env`` itself if it speaks gymnasium's API, else wrapped, with one warning per env name."""
    what = needs_adapting(env)
    if not what:
        return env
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"env {name} uses the old gym API; tray.rllib adapted it ({'; '.join(what)}, "
                      f"observations converted to arrays). Ray 2.60 rejects such envs: port it to gymnasium "
                      f"to silence this.", UserWarning, stacklevel=3)
    return OldGymAPIAdapter(env, what)
