"""SingleAgentEnvRunner: a vector of envs stepped with the current policy, in an actor or in-process.

One ``sample()`` call steps every env of the vector ``fragment`` times, acting on the whole batch
of observations at once (one numpy forward per step), and returns time-major arrays
``[T, num_envs, ...]`` plus the episodes that ended. Weights arrive as an object-store value with
a version number; a runner that has that version already does not touch them.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import gymnasium as gym
import numpy as np

from ..core.rl_module.numpy_policy import NumpyPolicy
from ..utils.error import EnvError
from .env_context import EnvContext, EnvCreator


@attrs.frozen
class RunnerSpec:
    """What every runner of a group shares (picklable, sent once at creation)."""

    creator: EnvCreator
    env_config: dict
    num_envs: int
    fragment: int
    seed: int | None
    num_workers: int
    clip_actions: bool = False


def _flatten_obs(space: gym.Space) -> tuple[int, Any]:
    if isinstance(space, gym.spaces.Box):
        size = int(np.prod(space.shape))
        return size, lambda o: np.asarray(o, np.float32).reshape(size)
    if isinstance(space, gym.spaces.Discrete):
        eye = np.eye(space.n, dtype=np.float32)
        return int(space.n), lambda o: eye[int(o) - space.start]
    raise ValueError(f"observation space {space} is not supported (Box or Discrete)")


def to_env_action(a: np.ndarray, space: gym.Space, clip_actions: bool, normalize: bool = True) -> Any:
    """A module's action as the env takes it: Discrete offset by ``start``; a bounded Box's action
    clipped to its bounds (``clip_actions``) or else mapped from [-1, 1] onto them (Ray's
    ``normalize_actions``)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(a) + int(space.start)
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"action space {space} is not supported (Discrete or Box)")
    a = np.asarray(a, np.float32).reshape(space.shape)
    if clip_actions:
        return np.clip(a, space.low, space.high)
    if normalize and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
        a = space.low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (space.high - space.low)
    return a.astype(space.dtype)


class SingleAgentEnvRunner:
    """Steps ``num_envs`` copies of one env; ``worker_index`` 0 is the main process's own runner."""

    def __init__(self, spec: RunnerSpec, worker_index: int) -> None:
        self.spec = spec
        self.worker_index = worker_index
        self.envs = [self._make_env(i) for i in range(spec.num_envs)]
        env0 = self.envs[0]
        self.observation_space = env0.observation_space
        self.action_space = env0.action_space
        self.obs_size, self._flat = _flatten_obs(self.observation_space)
        base = None if spec.seed is None else spec.seed * 10_007 + worker_index * 1_009
        self.rng = np.random.default_rng(base)
        self.policy: NumpyPolicy | None = None
        self.version = -1
        self.obs = np.stack([self._reset(i, None if base is None else base + i) for i in range(spec.num_envs)])
        self.ep_return = np.zeros(spec.num_envs)
        self.ep_len = np.zeros(spec.num_envs, np.int64)

    # ------------------------------------------------------------------ env plumbing
    def _make_env(self, vector_index: int) -> gym.Env:
        ctx = EnvContext(self.spec.env_config, self.worker_index, self.spec.num_workers, vector_index)
        try:
            return self.spec.creator(ctx)
        except Exception as exc:
            raise self._env_error("creating it", exc) from exc

    def _env_error(self, doing: str, exc: BaseException) -> EnvError:
        where = "the main process" if self.worker_index == 0 else f"env runner {self.worker_index}"
        return EnvError(f"env {self.spec.creator.name} raised {type(exc).__name__} while {doing} in {where} "
                        f"(pid {os.getpid()}): {exc}", pid=os.getpid())

    def _reset(self, i: int, seed: int | None) -> np.ndarray:
        try:
            obs, _ = self.envs[i].reset(seed=seed)
        except Exception as exc:
            raise self._env_error("resetting", exc) from exc
        return self._flat(obs)

    def _env_action(self, a: np.ndarray) -> Any:
        return to_env_action(a, self.action_space, self.spec.clip_actions)

    # ------------------------------------------------------------------ the protocol
    def get_spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.observation_space, self.action_space

    def ping(self) -> int:
        return os.getpid()

    def set_weights(self, weights: dict[str, Any], version: int) -> None:
        if version != self.version:
            self.policy = NumpyPolicy(weights)
            self.version = version

    def sample(self, weights: dict[str, Any] | None, version: int, *, explore: bool = True, epsilon: float = 0.0,
               num_timesteps: int | None = None) -> dict[str, Any]:
        """Step every env ``num_timesteps`` (default: the fragment length) times; time-major arrays."""
        if weights is not None:
            self.set_weights(weights, version)
        if self.policy is None:
            raise RuntimeError("sample() before any weights were set")
        T, N = num_timesteps or self.spec.fragment, self.spec.num_envs
        obs_buf = np.empty((T, N, self.obs_size), np.float32)
        next_buf = np.empty((T, N, self.obs_size), np.float32)
        rew = np.empty((T, N), np.float32)
        term = np.zeros((T, N), bool)
        trunc = np.zeros((T, N), bool)
        logp = np.empty((T, N), np.float32)
        acts: np.ndarray | None = None
        episodes: list[tuple[float, int]] = []
        for t in range(T):
            obs_buf[t] = self.obs
            a, lp = self.policy.act_batch(self.obs, self.rng, explore, epsilon)
            if acts is None:
                acts = np.empty((T, *a.shape), a.dtype)
            acts[t] = a
            logp[t] = lp
            for i in range(N):
                try:
                    o, r, te, tr, _ = self.envs[i].step(self._env_action(a[i]))
                except Exception as exc:
                    raise self._env_error("stepping", exc) from exc
                o = self._flat(o)
                next_buf[t, i] = o
                rew[t, i] = r
                self.ep_return[i] += r
                self.ep_len[i] += 1
                if te or tr:
                    term[t, i], trunc[t, i] = te, tr and not te
                    episodes.append((float(self.ep_return[i]), int(self.ep_len[i])))
                    self.ep_return[i] = 0.0
                    self.ep_len[i] = 0
                    o = self._reset(i, None)
                self.obs[i] = o
        return {"obs": obs_buf, "next_obs": next_buf, "actions": acts, "rewards": rew, "terminateds": term,
                "truncateds": trunc, "action_logp": logp, "episodes": episodes, "env_steps": T * N,
                "worker_index": self.worker_index, "weights_seq_no": self.version}

    def sample_episodes(self, weights: dict[str, Any] | None, version: int, num_episodes: int, *,
                        explore: bool = False) -> list[tuple[float, int]]:
        """Run fresh episodes until ``num_episodes`` end (evaluation); ``(return, length)`` each."""
        if weights is not None:
            self.set_weights(weights, version)
        assert self.policy is not None
        N = self.spec.num_envs
        obs = np.stack([self._reset(i, None) for i in range(N)])
        ret, length = np.zeros(N), np.zeros(N, np.int64)
        done: list[tuple[float, int]] = []
        started = N
        active = np.ones(N, bool)
        while len(done) < num_episodes:
            a, _ = self.policy.act_batch(obs, self.rng, explore)
            for i in np.flatnonzero(active):
                try:
                    o, r, te, tr, _ = self.envs[i].step(self._env_action(a[i]))
                except Exception as exc:
                    raise self._env_error("stepping", exc) from exc
                ret[i] += r
                length[i] += 1
                if te or tr:
                    done.append((float(ret[i]), int(length[i])))
                    ret[i], length[i] = 0.0, 0
                    if started >= num_episodes:
                        active[i] = False
                        continue
                    started += 1
                    obs[i] = self._reset(int(i), None)
                else:
                    obs[i] = self._flat(o)
        # the training vector's episodes were interrupted: start them afresh
        self.obs = np.stack([self._reset(i, None) for i in range(N)])
        self.ep_return[:] = 0.0
        self.ep_len[:] = 0
        return done[:num_episodes]

    def stop(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
