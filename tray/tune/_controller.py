"""The trial controller: runs a search's trials as runner actors and decides on every result.

It lives in the driver (as Ray's TuneController does), in a plain loop: start trials while the
cluster has room, long-poll the runners for result batches (``tray.wait`` over one outstanding
``fetch`` per running trial), and hand each result to the stopper, the scheduler, the searcher,
the trial's files and the callbacks. Runner actors are reused across trials of the same shape;
a runner whose process dies restarts its trial from the latest checkpoint (``max_failures``),
as a supervisor restarts a child."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
import uuid
from typing import Any

import tray
from tray.exceptions import GetTimeoutError, RayActorError, RayError, WorkerCrashedError

from .._air import Checkpoint, CheckpointConfig, FailureConfig, PlacementGroupFactory
from ._files import TrialFiles, write_error
from ._runner import TrialRunner
from .callback import Callback
from .error import TuneError
from .experiment.trial import Trial
from .schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from .search.basic_variant import SearchAlgorithm
from .stopper import Stopper

logger = logging.getLogger("tray.tune")

_RemoteRunner = tray.remote(TrialRunner)
_CKPT_RE = re.compile(r"checkpoint_(\d+)$")
WINDOW_FAST = 64  # results a trial may run ahead of the controller when nothing decides per result


class _Runner:
    """One runner actor as the controller tracks it."""

    def __init__(self, handle: Any, factory: PlacementGroupFactory, pg: Any, reserved: dict[str, float]) -> None:
        self.handle = handle
        self.factory = factory
        self.pg = pg
        self.reserved = reserved
        self.loaded: set[str] = set()


class _Live:
    """A running trial: its runner, run generation and outstanding fetch (or start)."""

    def __init__(self, trial: Trial, runner: _Runner, gen: int, fetch_ref: Any) -> None:
        self.trial, self.runner, self.gen = trial, runner, gen
        self.fetch_ref = fetch_ref
        self.acked = 0


class TuneController:
    def __init__(self, *, trainable: Any, trainable_name: str, search_alg: SearchAlgorithm,
                 scheduler: TrialScheduler | None, stopper: Stopper, metric: str | None, mode: str | None,
                 experiment_path: str, experiment_name: str, resources: Any, resources_from_default: bool,
                 max_concurrent_trials: int | None, time_budget_s: float | None, reuse_actors: bool,
                 failure_config: FailureConfig, checkpoint_config: CheckpointConfig, callbacks: list[Callback],
                 reporter: Any, trials: list[Trial] | None = None, state_saver: Any = None,
                 is_class: bool = False, trial_name_creator: Any = None, trial_dirname_creator: Any = None) -> None:
        self.trainable = trainable
        self.trainable_name = trainable_name
        self.trainable_key = uuid.uuid4().hex
        self.search_alg = search_alg
        self.scheduler = scheduler or FIFOScheduler()
        self.stopper = stopper
        self.metric, self.mode = metric, mode
        self.experiment_path = experiment_path
        self.experiment_name = experiment_name
        self.experiment_id = uuid.uuid4().hex
        self._resources = resources
        self._resources_from_default = resources_from_default
        self.max_concurrent = max_concurrent_trials or 0
        self.time_budget_s = time_budget_s
        self.reuse_actors = reuse_actors
        self.failure_config = failure_config
        self.checkpoint_config = checkpoint_config
        self.callbacks = callbacks
        self.reporter = reporter
        self._state_saver = state_saver
        self.is_class = is_class
        self._name_creator, self._dirname_creator = trial_name_creator, trial_dirname_creator
        self._trials: list[Trial] = list(trials or [])
        self._files: dict[str, TrialFiles] = {}
        self._live: dict[str, _Live] = {}
        self._idle: list[_Runner] = []
        self._releasing: list[tuple[_Runner, Any, float]] = []
        self._all_runners: list[_Runner] = []
        self._gen = 0
        self._iteration = 0
        self._stop_all = False
        self._fail_fast_error: BaseException | None = None
        self._total = {k: float(v) for k, v in tray.cluster_resources().items()}
        self._total_at = time.monotonic()
        self._used: dict[str, float] = {}
        self._next_state_save = 0.0
        self._id_prefix = uuid.uuid4().hex[:5]
        self._next_index = max((int(t.trial_id.rsplit("_", 1)[-1]) + 1 for t in self._trials
                                if t.trial_id.rsplit("_", 1)[-1].isdigit()), default=0)
        if self._trials:
            self._id_prefix = self._trials[0].trial_id.rsplit("_", 1)[0]
        buffered = isinstance(self.scheduler, FIFOScheduler) and type(self.scheduler) is FIFOScheduler
        self._window = WINDOW_FAST if buffered and type(stopper).__name__ in ("NoopStopper", "DictStopper") else 1

    # -- what schedulers and searchers see -----------------------------------------------
    def get_trials(self) -> list[Trial]:
        return self._trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self._trials if not t.is_finished()]

    def search_finished(self) -> bool:
        return self.search_alg.is_finished()

    def has_resources_for_trial(self, trial: Trial) -> bool:
        key = trial.placement_group_factory
        if any(r.factory == key for r in self._idle):
            return True
        need = self._request_of(trial)
        free = {k: self._total.get(k, 0.0) - self._used.get(k, 0.0) for k in self._total}
        for r in self._idle:
            for k, v in r.reserved.items():
                free[k] = free.get(k, 0.0) + v
        return all(free.get(k, 0.0) + 1e-9 >= v for k, v in need.items())

    def stop_trial(self, trial: Trial) -> None:
        """End ``trial`` now (TERMINATED), whatever it is doing."""
        if trial.status == Trial.RUNNING:
            self._end_run(trial)
        if not trial.is_finished():
            self._complete(trial, Trial.TERMINATED)

    def pause_trial(self, trial: Trial, should_checkpoint: bool = True) -> None:
        if trial.status == Trial.RUNNING:
            ckpt = self._end_run(trial, save=should_checkpoint)
            if ckpt is not None:
                self._register_checkpoint(trial, ckpt, trial.last_result)
        trial.restore_from = trial.checkpoint
        trial.status = Trial.PAUSED

    def exploit(self, trial: Trial, new_config: dict[str, Any], checkpoint: Checkpoint, tag: str = "") -> None:
        """PBT: restart ``trial`` with ``new_config`` from another trial's ``checkpoint``."""
        if trial.status == Trial.RUNNING:
            self._end_run(trial)
        trial.config = new_config
        trial.experiment_tag = f"{trial.experiment_tag}_{tag}" if tag else trial.experiment_tag
        trial.restore_from = checkpoint
        trial.status = Trial.PENDING

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> list[Trial]:
        start = time.monotonic()
        for cb in self.callbacks:
            cb.setup(stop=self.stopper, total_num_samples=self.search_alg.total_samples)
        for trial in self._trials:  # restored: what did not finish runs again
            if not trial.is_finished():
                trial.status = Trial.PENDING
                self.scheduler.on_trial_add(self, trial)
        try:
            while True:
                self._iteration += 1
                for cb in self.callbacks:
                    cb.on_step_begin(self._iteration, self._trials)
                if self.time_budget_s is not None and time.monotonic() - start >= self.time_budget_s:
                    self._stop_all = True
                if self.stopper.stop_all():
                    self._stop_all = True
                if self._stop_all:
                    for trial in list(self._trials):
                        if trial.status == Trial.RUNNING:
                            self.stop_trial(trial)
                    break
                if time.monotonic() - self._total_at > 5.0:  # nodes may have joined or left
                    self._total = {k: float(v) for k, v in tray.cluster_resources().items()}
                    self._total_at = time.monotonic()
                self._start_trials()
                if not self._live and not self._has_startable():
                    break
                self._poll()
                self._reap_released()
                for cb in self.callbacks:
                    cb.on_step_end(self._iteration, self._trials)
                self._report(done=False)
                self._save_state(force=False)
        finally:
            self._shutdown()
        self._report(done=True)
        self._save_state(force=True)
        for cb in self.callbacks:
            cb.on_experiment_end(self._trials)
        if self._fail_fast_error is not None and self.failure_config.fail_fast == "raise":
            raise self._fail_fast_error
        return self._trials

    def _has_startable(self) -> bool:
        if not self.search_alg.is_finished():
            return True
        if any(t.status == Trial.PENDING for t in self._trials):
            return True
        # paused trials a scheduler will resume
        return self.scheduler.choose_trial_to_run(self) is not None

    def _start_trials(self) -> None:
        while not self._stop_all:
            if self.max_concurrent and len(self._live) >= self.max_concurrent:
                return
            trial = self.scheduler.choose_trial_to_run(self)
            if trial is None:
                if any(t.status == Trial.PENDING for t in self._trials) or self.search_alg.is_finished():
                    return
                if not self._new_trial():
                    return
                continue
            self._launch(trial)

    def _new_trial(self) -> bool:
        trial_id = f"{self._id_prefix}_{self._next_index:05d}"
        got = self.search_alg.next_trial(trial_id)
        if got is None:
            return False
        config, varied, tag = got
        self._next_index += 1
        factory, from_default = self._factory_for(config)
        dirname = _trial_dirname(self.trainable_name, trial_id, tag)
        trial = Trial(self.trainable_name, config, trial_id, experiment_tag=tag,
                      evaluated_params={"/".join(map(str, k)): v for k, v in varied.items()}, resources=factory,
                      local_path=os.path.join(self.experiment_path, dirname), experiment_name=self.experiment_name,
                      max_failures=self.failure_config.max_failures)
        if self._name_creator is not None:
            trial.custom_trial_name = str(self._name_creator(trial))
        if self._dirname_creator is not None:
            trial.local_path = os.path.join(self.experiment_path, str(self._dirname_creator(trial)))
        self._trials.append(trial)
        missing = self._missing(factory.required_resources)
        if missing and from_default:
            # the trainable's own default (RLlib's PPO with num_workers=4 on a 2-CPU laptop): run it in
            # one bundle of what the cluster has; its workers share those CPUs
            fitted = {k: min(v, self._total.get(k, 0.0)) for k, v in factory.required_resources.items()}
            logger.warning("%s asks for %s by default, more than this cluster has (%s); it runs with %s instead",
                           self.trainable_name, factory.required_resources, _show(self._total), fitted)
            trial.placement_group_factory = PlacementGroupFactory([fitted], factory.strategy)
        elif missing:
            err = TuneError(f"trial {trial} can never run here: it asks for {factory.required_resources} and the "
                            f"cluster has {_show(self._total)}; missing {missing}")
            self.scheduler.on_trial_add(self, trial)
            self._fail(trial, err, str(err))
            return True
        self.scheduler.on_trial_add(self, trial)
        return True

    def _factory_for(self, config: dict[str, Any]) -> tuple[PlacementGroupFactory, bool]:
        from .._air.resources import resources_to_factory

        res = self._resources
        if callable(res) and not isinstance(res, PlacementGroupFactory):
            res = res(config)
        return resources_to_factory(res), self._resources_from_default

    def _missing(self, need: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in need.items() if v > self._total.get(k, 0.0) + 1e-9}

    def _request_of(self, trial: Trial) -> dict[str, float]:
        return trial.placement_group_factory.required_resources

    # -- runners ----------------------------------------------------------------------------
    def _runner_for(self, trial: Trial) -> _Runner:
        factory = trial.placement_group_factory
        for i, r in enumerate(self._idle):
            if r.factory == factory:
                return self._idle.pop(i)
        need = factory.required_resources
        while self._idle and not all(self._total.get(k, 0.0) - self._used.get(k, 0.0) + 1e-9 >= v
                                     for k, v in need.items()):
            self._kill_runner(self._idle.pop(0))
        bundles = factory.bundles
        pg = None
        if len(bundles) > 1:
            from tray.util import placement_group
            from tray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            pg = placement_group([b for b in bundles if any(v > 0 for v in b.values())] or [{"CPU": 0.01}],
                                 strategy=factory.strategy)
            opts: dict[str, Any] = {"scheduling_strategy": PlacementGroupSchedulingStrategy(pg, 0)}
        else:
            opts = {}
        head = bundles[0]
        custom = {k: v for k, v in head.items() if k not in ("CPU", "GPU", "memory") and v > 0}
        handle = _RemoteRunner.options(num_cpus=head.get("CPU", 0.0), num_gpus=head.get("GPU", 0.0),
                                       resources=custom or None, max_concurrency=4, max_restarts=0,
                                       **opts).remote(head.get("CPU", 1.0))
        runner = _Runner(handle, factory, pg, need)
        for k, v in need.items():
            self._used[k] = self._used.get(k, 0.0) + v
        self._all_runners.append(runner)
        return runner

    def _kill_runner(self, runner: _Runner) -> None:
        try:
            tray.kill(runner.handle)
        except Exception:  # noqa: BLE001 - already gone
            pass
        if runner.pg is not None:
            try:
                from tray.util import remove_placement_group

                remove_placement_group(runner.pg)
            except Exception:  # noqa: BLE001
                pass
        for k, v in runner.reserved.items():
            self._used[k] = self._used.get(k, 0.0) - v
        if runner in self._all_runners:
            self._all_runners.remove(runner)

    def _release(self, runner: _Runner, stop_ref: Any = None) -> None:
        """A runner whose trial ended: back to the pool (once its stop returns) or gone."""
        if not self.reuse_actors:
            self._kill_runner(runner)
        elif stop_ref is None:
            self._idle.append(runner)
        else:
            self._releasing.append((runner, stop_ref, time.monotonic()))

    def _reap_released(self) -> None:
        still = []
        for runner, ref, since in self._releasing:
            ready, _ = tray.wait([ref], timeout=0)
            if ready:
                try:
                    out = tray.get(ref)
                    (self._kill_runner if out.get("stuck") else self._idle.append)(runner)
                except RayError:
                    self._kill_runner(runner)
            elif time.monotonic() - since > 30:
                self._kill_runner(runner)
            else:
                still.append((runner, ref, since))
        self._releasing = still

    def _launch(self, trial: Trial) -> None:
        runner = self._runner_for(trial)
        self._gen += 1
        restore = trial.restore_from
        last = trial.last_result
        spec = {"trial_id": trial.trial_id, "trial_name": str(trial), "trial_dir": trial.local_path,
                "experiment_name": self.experiment_name, "experiment_id": self.experiment_id,
                "storage_path": os.path.dirname(self.experiment_path), "config": trial.config,
                "checkpoint": restore.path if restore is not None else None,
                "start_iteration": last.get("training_iteration", 0) if restore is not None else 0,
                "start_time_total": last.get("time_total_s", 0.0) if restore is not None else 0.0,
                "start_checkpoint_index": trial.checkpoint_index, "window": self._window,
                "checkpoint_frequency": self.checkpoint_config.checkpoint_frequency,
                "resources": trial.placement_group_factory}
        if trial.trial_id not in self._files:
            self._files[trial.trial_id] = TrialFiles(trial.local_path, trial.config)
        ship = None
        if self.trainable_key not in runner.loaded:
            ship = self.trainable
            runner.loaded.add(self.trainable_key)
        # start replies with the trial's first batch, as a fetch does
        live = _Live(trial, runner, self._gen, runner.handle.start.remote(self._gen, self.trainable_key, spec, ship))
        self._live[trial.trial_id] = live
        was_restore = restore is not None
        trial.status = Trial.RUNNING
        trial.start_time = trial.start_time or time.time()
        for cb in self.callbacks:
            (cb.on_trial_restore if was_restore else cb.on_trial_start)(self._iteration, self._trials, trial)

    def _end_run(self, trial: Trial, save: bool = False) -> Checkpoint | None:
        """Stop ``trial``'s run on its runner and give the runner back; for a class trainable with
        ``save``, the checkpoint it took as it stopped."""
        live = self._live.pop(trial.trial_id, None)
        if live is None:
            return None
        ref = live.runner.handle.stop.remote(live.gen, save)
        if self.is_class:
            try:
                out = tray.get(ref, timeout=60)
            except (RayError, GetTimeoutError):
                self._kill_runner(live.runner)
                return None
            (self._kill_runner if out.get("stuck") else self._release)(live.runner)
            if out.get("checkpoint"):
                trial.checkpoint_index = max(trial.checkpoint_index, out.get("checkpoint_index", 0))
                return Checkpoint(out["checkpoint"])
            return None
        self._release(live.runner, ref)
        return None

    # -- results ----------------------------------------------------------------------------
    def _poll(self) -> None:
        refs = {live.fetch_ref: live for live in self._live.values()}
        if not refs:  # waiting for resources or for runners to come back: do not spin
            time.sleep(0.01)
            return
        ready, _ = tray.wait(list(refs), num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = tray.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in ready:
            live = refs[ref]
            if self._live.get(live.trial.trial_id) is live:
                self._handle(live, ref)
        for files in self._files.values():
            files.flush()

    def _handle(self, live: _Live, ref: Any) -> None:
        trial = live.trial
        try:
            batch = tray.get(ref)
        except (RayActorError, WorkerCrashedError) as exc:
            self._runner_died(live, exc)
            return
        except Exception as exc:  # noqa: BLE001 - the trial could not start there (e.g. its trainable does not unpickle)
            self._live.pop(trial.trial_id, None)
            self._kill_runner(live.runner)
            self._errored(trial, exc, f"{type(exc).__name__}: {exc}")
            return
        for result, ckpt_path in batch["results"]:
            decision = self._on_result(trial, result, ckpt_path)
            live.acked += 1
            if self._live.get(trial.trial_id) is not live:
                return  # stopped, paused or restarted by that decision
            if decision == TrialScheduler.STOP:
                return
        if batch.get("done"):
            self._live.pop(trial.trial_id, None)
            if "error" in batch:
                error, tb = batch["error"]
                self._release(live.runner)
                self._errored(trial, error, tb)
                return
            if self.is_class:
                self._live[trial.trial_id] = live
                ckpt = self._end_run(trial, save=bool(self.checkpoint_config.checkpoint_at_end))
                if ckpt is not None:
                    self._register_checkpoint(trial, ckpt, trial.last_result)
            else:
                self._release(live.runner)
            self._complete(trial, Trial.TERMINATED)
            return
        live.fetch_ref = live.runner.handle.fetch.remote(live.gen, live.acked)

    def _on_result(self, trial: Trial, result: dict[str, Any], ckpt_path: str | None) -> str:
        result.setdefault("config", trial.config)
        if ckpt_path is not None:
            m = _CKPT_RE.search(ckpt_path)
            if m:
                trial.checkpoint_index = max(trial.checkpoint_index, int(m.group(1)) + 1)
            self._register_checkpoint(trial, Checkpoint(ckpt_path), result)
        trial.update_last_result(result)
        self._files[trial.trial_id].write(result)
        for cb in self.callbacks:
            cb.on_trial_result(self._iteration, self._trials, trial, result)
        self.search_alg.on_trial_result(trial.trial_id, result)
        if self.stopper(trial.trial_id, result) or result.get("done"):
            if self.is_class and self.checkpoint_config.checkpoint_at_end:
                ckpt = self._end_run(trial, save=True)
                if ckpt is not None:
                    self._register_checkpoint(trial, ckpt, result)
            self.stop_trial(trial)
            return TrialScheduler.STOP
        decision = self.scheduler.on_trial_result(self, trial, result)
        if decision == TrialScheduler.STOP:
            self.stop_trial(trial)
        elif decision == TrialScheduler.PAUSE:
            self.pause_trial(trial)
        if self.stopper.stop_all():
            self._stop_all = True
        return decision

    def _register_checkpoint(self, trial: Trial, checkpoint: Checkpoint, metrics: dict[str, Any]) -> None:
        trial.checkpoint = checkpoint
        trial.checkpoints = [(c, m) for c, m in trial.checkpoints if c.path != checkpoint.path]
        trial.checkpoints.append((checkpoint, {k: v for k, v in metrics.items() if k != "config"}))
        for cb in self.callbacks:
            cb.on_checkpoint(self._iteration, self._trials, trial, checkpoint)
        keep = self.checkpoint_config.num_to_keep
        if keep is None or len(trial.checkpoints) <= keep:
            return
        attr = self.checkpoint_config.checkpoint_score_attribute
        candidates = trial.checkpoints[:-1]  # the latest is always kept: a restart resumes from it
        if attr is None:
            drop = candidates[: len(trial.checkpoints) - keep]
        else:
            sign = 1 if self.checkpoint_config.checkpoint_score_order == "max" else -1

            def score(item: tuple[Checkpoint, dict[str, Any]]) -> float:
                v = item[1].get(attr)
                return sign * v if isinstance(v, (int, float)) and not math.isnan(v) else -math.inf

            ranked = sorted(candidates, key=score)
            drop = ranked[: len(trial.checkpoints) - keep]
        for c, _ in drop:
            trial.checkpoints.remove((c, _))
            if trial.restore_from is not None and trial.restore_from.path == c.path:
                continue
            _rmtree(c.path)

    # -- endings ----------------------------------------------------------------------------
    def _complete(self, trial: Trial, status: str) -> None:
        trial.status = status
        if trial.last_result:
            trial.last_result["done"] = True
        self.scheduler.on_trial_complete(self, trial, trial.last_result)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result)
        for cb in self.callbacks:
            cb.on_trial_complete(self._iteration, self._trials, trial)
        self._close_files(trial)
        self._save_state(force=False)

    def _close_files(self, trial: Trial) -> None:
        files = self._files.pop(trial.trial_id, None)
        if files is not None:
            files.close()

    def _runner_died(self, live: _Live, exc: BaseException) -> None:
        trial = live.trial
        self._live.pop(trial.trial_id, None)
        self._kill_runner(live.runner)
        self._retry_or_fail(trial, exc, f"the trial's process died: {exc}")

    def _errored(self, trial: Trial, exc: BaseException | None, tb: str) -> None:
        self._retry_or_fail(trial, exc, tb)

    def _retry_or_fail(self, trial: Trial, exc: BaseException | None, text: str) -> None:
        trial.num_failures += 1
        limit = self.failure_config.max_failures
        if limit == -1 or trial.num_failures <= limit:
            logger.warning("trial %s failed (%d/%s); restarting it from %s", trial, trial.num_failures,
                           "inf" if limit == -1 else limit, trial.checkpoint.path if trial.checkpoint else "scratch")
            trial.restore_from = trial.checkpoint
            if trial.checkpoint is None:
                trial.last_result = {}
            trial.status = Trial.PENDING
            return
        self._fail(trial, exc, text)

    def _fail(self, trial: Trial, exc: BaseException | None, text: str) -> None:
        trial.status = Trial.ERROR
        trial.error = exc if exc is not None else TuneError(text)
        trial.error_msg = text
        write_error(trial.local_path, trial.error, text)
        self.scheduler.on_trial_error(self, trial)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)
        for cb in self.callbacks:
            cb.on_trial_error(self._iteration, self._trials, trial)
        self._close_files(trial)
        self._save_state(force=False)
        if self.verbose_errors():
            first = text.strip().splitlines()[-1] if text.strip() else repr(exc)
            print(f"Trial {trial} errored: {first}", file=sys.stderr)
        if self.failure_config.fail_fast:
            self._fail_fast_error = trial.error
            self._stop_all = True

    def verbose_errors(self) -> bool:
        return self.reporter is not None

    # -- bookkeeping ------------------------------------------------------------------------
    def _report(self, done: bool) -> None:
        if self.reporter is not None and (done or self.reporter.should_report(self._trials, done)):
            self.reporter.report(self._trials, done)

    def _save_state(self, force: bool) -> None:
        """Write the run's state for restore: at most every 0.25 s, and never more than ~5% of the
        time (a save that took d seconds waits 20 d for the next), as Ray adapts its period."""
        now = time.monotonic()
        if self._state_saver is None or (not force and now < self._next_state_save):
            return
        self._state_saver(self)
        took = time.monotonic() - now
        self._next_state_save = time.monotonic() + max(0.25, 20 * took)

    def _shutdown(self) -> None:
        for trial_id in list(self._live):
            live = self._live.pop(trial_id)
            self._kill_runner(live.runner)
        for runner, _, _ in self._releasing:
            self._kill_runner(runner)
        self._releasing = []
        for runner in list(self._all_runners):
            self._kill_runner(runner)
        self._idle = []
        for trial in self._trials:
            self._close_files(trial)


def _show(resources: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in resources.items() if k not in ("memory", "object_store_memory")}


def _sum(bundles: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _trial_dirname(trainable_name: str, trial_id: str, tag: str) -> str:
    name = f"{trainable_name}_{trial_id}_{tag}"[:120]
    return f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
