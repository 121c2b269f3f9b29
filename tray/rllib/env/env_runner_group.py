"""EnvRunnerGroup: the env runner actors of one algorithm, their weights and their failures.

Runners are tray actors created with ``max_restarts``: tray puts each under its supervisor, so
a runner whose process dies (SIGKILL, OOM) is started again with a fresh ``__init__``. A runner
whose env raises is killed so that the supervisor replaces it the same way; the runner counts
as back when a ping is answered by a process other than the one whose env raised (the kill
takes a moment to land, and until then the old process still answers: taking its answer for
the replacement's would send it the next sample, and count its death as a second failure).
Either way the
iteration goes on with the other runners (``restart_failed_env_runners``), and the warning or
error names the env and the runner. Weights reach runners as one ``tray.put`` per update: every
sample call carries that ref and its version, and a runner reads the value only when its
version is stale (a restarted runner has none).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import tray
from tray.exceptions import GetTimeoutError, RayActorError

from ..utils.error import EnvError
from .single_agent_env_runner import RunnerSpec, SingleAgentEnvRunner

logger = logging.getLogger("tray.rllib")

PING_AGAIN_S = 0.05  # between pings of a runner being replaced


class EnvRunnerGroup:
    """``num_env_runners`` remote runners, or one in-process runner when that is 0."""

    def __init__(self, spec: RunnerSpec, num_env_runners: int, num_cpus_per_env_runner: float, *,
                 restart_failed: bool = True, ignore_failures: bool = False, max_restarts: int = 1000,
                 sample_timeout_s: float = 60.0, what: str = "env runner") -> None:
        self.spec = spec
        self.what = what
        self.restart_failed = restart_failed
        self.ignore_failures = ignore_failures
        self.max_restarts = max_restarts
        self.sample_timeout_s = sample_timeout_s
        self.num_restarts = 0
        self.version = -1
        self._weights: dict[str, Any] | None = None
        self._weights_ref: Any = None
        self.local: SingleAgentEnvRunner | None = None
        self.runners: dict[int, Any] = {}
        self._recovering: dict[int, tuple[Any, float, int | None]] = {}  # index -> (ping, failed at, old pid)
        self._inflight: dict[Any, int] = {}  # async sampling: ref -> runner index
        if num_env_runners == 0:
            self.local = SingleAgentEnvRunner(spec, 0)
            return
        self._cls = tray.remote(SingleAgentEnvRunner).options(
            num_cpus=num_cpus_per_env_runner, max_restarts=max_restarts if restart_failed else 0,
            max_task_retries=0)
        for i in range(1, num_env_runners + 1):
            self.runners[i] = self._cls.remote(spec, i)

    # ------------------------------------------------------------------ weights
    def sync_weights(self, weights: dict[str, Any], version: int) -> None:
        """Make ``weights`` (numpy) the runners' next policy: one put, read by each runner once."""
        self.version = version
        self._weights = weights
        if self.local is not None:
            self.local.set_weights(weights, version)
        else:
            self._weights_ref = tray.put(weights)

    @property
    def num_healthy(self) -> int:
        return 1 if self.local is not None else len(self.runners) - len(self._recovering)

    # ------------------------------------------------------------------ synchronous sampling
    def sample(self, min_env_steps: int, **kw: Any) -> list[dict[str, Any]]:
        """Batches from every healthy runner, round after round, until ``min_env_steps`` are in."""
        batches: list[dict[str, Any]] = []
        steps = 0
        if self.local is not None:
            while steps < min_env_steps:
                batch = self.local.sample(None, self.version, **kw)
                batches.append(batch)
                steps += batch["env_steps"]
            return batches
        deadline = time.monotonic() + self.sample_timeout_s
        while steps < min_env_steps:
            self._poll_recovering(wait=not self._healthy())
            calls = {self.runners[i].sample.remote(self._weights_ref, self.version, **kw): i for i in self._healthy()}
            for ref, i in calls.items():
                try:
                    batch = tray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - every failure is sorted out by _failed
                    self._failed(i, exc)
                    continue
                batches.append(batch)
                steps += batch["env_steps"]
            if not calls and time.monotonic() > deadline:
                raise TimeoutError(f"no {self.what} came back within sample_timeout_s={self.sample_timeout_s}")
            if calls:
                deadline = time.monotonic() + self.sample_timeout_s
        return batches

    def _healthy(self) -> list[int]:
        return [i for i in self.runners if i not in self._recovering]

    # ------------------------------------------------------------------ asynchronous sampling
    def sample_async(self, **kw: Any) -> list[dict[str, Any]]:
        """The batches that have arrived (at least one), with every healthy runner sampling again.

        Each runner keeps one sample call in flight: a runner whose batch arrived is sent its next
        call, with the latest weights ref, before this returns, so runners sample while the
        learner learns (IMPALA's actor-learner split; the batches' behaviour log-probs let V-trace
        correct for the policy lag). With no remote runners, one local sample.
        """
        if self.local is not None:
            return [self.local.sample(None, self.version, **kw)]
        self._poll_recovering(wait=False)
        self._submit_idle(kw)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.sample_timeout_s
        while not out:
            if not self._inflight:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {self.what} is healthy after {self.sample_timeout_s} s")
                self._poll_recovering(wait=True)
                self._submit_idle(kw)
                continue
            ready, _ = tray.wait(list(self._inflight), num_returns=1, timeout=self.sample_timeout_s)
            if not ready:
                raise TimeoutError(f"no {self.what} returned a sample within sample_timeout_s={self.sample_timeout_s}")
            ready, _ = tray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=0)
            for ref in ready:
                i = self._inflight.pop(ref)
                try:
                    out.append(tray.get(ref))
                except Exception as exc:  # noqa: BLE001 - every failure is sorted out by _failed
                    self._failed(i, exc)
            self._submit_idle(kw)
        return out

    def _submit_idle(self, kw: dict[str, Any]) -> None:
        busy = set(self._inflight.values())
        for i in self._healthy():
            if i not in busy:
                self._inflight[self.runners[i].sample.remote(self._weights_ref, self.version, **kw)] = i

    # ------------------------------------------------------------------ failures
    def _failed(self, index: int, exc: BaseException) -> None:
        env_error = isinstance(exc, EnvError)
        if not env_error and not isinstance(exc, (RayActorError, GetTimeoutError)):
            raise exc
        reason = str(exc).splitlines()[0] if env_error else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        what = f"{self.what} {index} (env {self.spec.creator.name}) failed: {reason}"
        if not self.restart_failed:
            if self.ignore_failures:
                logger.warning("%s; going on without it (ignore_env_runner_failures)", what)
                self.runners.pop(index, None)
                self._recovering.pop(index, None)
                if not self.runners:
                    raise RuntimeError(f"every {self.what} has failed; the last: {what}") from exc
                return
            raise RuntimeError(f"{what} (restart_failed_env_runners=False)") from exc
        self.num_restarts += 1
        if self.num_restarts > self.max_restarts:
            raise RuntimeError(f"{what}; max_num_env_runner_restarts={self.max_restarts} reached") from exc
        logger.warning("%s; its supervisor replaces it and the iteration goes on", what)
        if env_error or isinstance(exc, GetTimeoutError):  # the process lives: replace it
            tray.kill(self.runners[index], no_restart=False)
        self._recovering[index] = (self.runners[index].ping.remote(), time.monotonic(), getattr(exc, "pid", None))

    def _poll_recovering(self, wait: bool) -> None:
        """Runners whose new incarnation answers a ping are healthy again."""
        if not self._recovering:
            return
        refs = {ref: i for i, (ref, _, _) in self._recovering.items()}
        ready, _ = tray.wait(list(refs), num_returns=1 if wait else len(refs),
                             timeout=self.sample_timeout_s if wait else 0)
        if wait:
            ready, _ = tray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            i = refs[ref]
            _, failed_at, old_pid = self._recovering[i]
            try:
                pid = tray.get(ref)
            except RayActorError as exc:  # the old incarnation's death, or the new one is not up yet
                self._ping_again(i, failed_at, old_pid, exc)
            else:
                if old_pid is not None and pid == old_pid:  # the old process, its kill not landed yet
                    self._ping_again(i, failed_at, old_pid, None)
                else:
                    del self._recovering[i]

    def _ping_again(self, index: int, failed_at: float, old_pid: int | None, exc: BaseException | None) -> None:
        waited = time.monotonic() - failed_at
        if waited > self.sample_timeout_s:
            raise RuntimeError(f"{self.what} {index} (env {self.spec.creator.name}) did not come back within "
                               f"sample_timeout_s={self.sample_timeout_s} ({waited:.0f} s since it failed)") from exc
        time.sleep(PING_AGAIN_S)
        self._recovering[index] = (self.runners[index].ping.remote(), failed_at, old_pid)

    # ------------------------------------------------------------------ evaluation
    def sample_episodes(self, num_episodes: int, **kw: Any) -> list[tuple[float, int]]:
        """``num_episodes`` fresh episodes, split over the healthy runners."""
        if self.local is not None:
            return self.local.sample_episodes(None, self.version, num_episodes, **kw)
        healthy = self._healthy() or list(self.runners)
        share = [num_episodes // len(healthy) + (k < num_episodes % len(healthy)) for k in range(len(healthy))]
        refs = [self.runners[i].sample_episodes.remote(self._weights_ref, self.version, n, **kw)
                for i, n in zip(healthy, share, strict=False) if n]
        return [ep for eps in tray.get(refs, timeout=self.sample_timeout_s * max(1, num_episodes)) for ep in eps]

    def get_spaces(self) -> tuple[Any, Any]:
        if self.local is not None:
            return self.local.get_spaces()
        return tray.get(next(iter(self.runners.values())).get_spaces.remote())

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()
        for handle in self.runners.values():
            try:
                tray.kill(handle)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.runners.clear()
        self._inflight.clear()
        self._recovering.clear()
