"""The run's controller: starts the worker group, wires the backend, collects reports and
restarts the whole group from the latest checkpoint when a worker fails (one_for_all), up to
``FailureConfig.max_failures``.

It runs where ``fit()`` is called (the driver, or a Tune trial's actor): a report round is one
event from every rank; rank 0's metrics are the round's metrics, and the round's checkpoint is
the directory every rank's files were merged into. ``num_workers=0`` runs the loop right here,
with world size 1 and no process group.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

import tray
from tray import exceptions as tex

from .._air.checkpoint import Checkpoint
from .._air.config import RunConfig, ScalingConfig
from .._air.result import Result, rows_to_dataframe
from .._air.session import TrainContext, get_session, init_session, shutdown_session
from ._checkpoint_book import CheckpointBook, Entry
from ._errors import training_failed
from ._session import Event, WorkerSession
from ._storage import StorageContext
from ._worker import run_loop
from ._worker_group import WorkerGroup, check_feasible
from .backend import Backend

__all__ = ["RunSpec", "TrainController", "should_retry"]

log = logging.getLogger("tray.train")

BOOK_FILE = "train_state.json"
RESULT_FILE = "result.json"
DEATH_GRACE_S = 1.0
_DEATHS = (tex.RayActorError, tex.WorkerCrashedError, tex.NodeDiedError, tex.OwnerDiedError)


def should_retry(failures: int, max_failures: int) -> bool:
    """After the ``failures``-th failure, start the group again? (-1: always)."""
    return max_failures < 0 or failures <= max_failures


@attrs.define
class RunSpec:
    """Everything a run needs, as data (it travels into a Tune trial's actor)."""

    fn: Callable[..., Any]
    config: dict[str, Any] | None
    scaling: ScalingConfig
    run_config: RunConfig
    backend: Backend
    storage: StorageContext
    datasets: dict[str, Any] = attrs.field(factory=dict)
    resume_from: Checkpoint | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    trial_name: str | None = None
    trial_id: str = ""


class _GroupFailed(Exception):
    def __init__(self, failures: dict[int, BaseException], message: str) -> None:
        super().__init__(message)
        self.failures = failures
        self.message = message


class TrainController:
    """Runs one spec to its end and returns its Result (or raises TrainingFailedError)."""

    def __init__(self, spec: RunSpec,
                 on_report: Callable[[dict[str, Any], Checkpoint | None], None] | None = None) -> None:
        self.spec = spec
        self.on_report = on_report
        cc = spec.run_config.checkpoint_config
        assert cc is not None
        self.book = CheckpointBook(cc.num_to_keep, cc.checkpoint_score_attribute, cc.checkpoint_score_order)
        self.rows: list[dict[str, Any]] = []
        self.next_index = 0
        self.latest_metrics: dict[str, Any] | None = None
        self.return_value: Any = None
        self.failures = 0
        self._callbacks = list(spec.run_config.callbacks or [])

    # ---- state on storage (what restore() reads)

    def load_state(self) -> None:
        """Resume bookkeeping from a previous run in the same directory (``restore``)."""
        st = self.spec.storage
        if st.exists(BOOK_FILE):
            data = json.loads(st.read_bytes(BOOK_FILE))
            self.book.load_json(data["book"])
            self.next_index = data["next_index"]
        if st.exists(RESULT_FILE):
            self.rows = [json.loads(line) for line in st.read_bytes(RESULT_FILE).decode().splitlines() if line.strip()]
            self.rows = [{k: v for k, v in r.items() if k != "_checkpoint_index"} for r in self.rows]
        if self.book.latest is not None and self.spec.resume_from is None:
            self.spec.resume_from = st.checkpoint_at(self.book.latest.name)

    def _save_state(self) -> None:
        self.spec.storage.write_bytes(BOOK_FILE, json.dumps(
            {"book": self.book.to_json(), "next_index": self.next_index}).encode())

    def _append_row(self, metrics: dict[str, Any], checkpoint_name: str | None) -> None:
        row = dict(metrics)
        if checkpoint_name is not None:
            row["_checkpoint_index"] = int(checkpoint_name.rsplit("_", 1)[1])
        line = (json.dumps(row, default=repr) + "\n").encode()
        st = self.spec.storage
        if st.local:
            with open(st.path(RESULT_FILE), "ab") as f:
                f.write(line)
        else:
            old = st.read_bytes(RESULT_FILE) if st.exists(RESULT_FILE) else b""
            st.write_bytes(RESULT_FILE, old + line)

    # ---- the run

    def run(self) -> Result:
        spec = self.spec
        spec.storage.makedirs()
        if spec.scaling.num_workers == 0:
            self._run_local()
        else:
            check_feasible(spec.scaling._resources_per_worker_not_none, spec.scaling.num_workers,
                           spec.scaling.placement_strategy)
            self._run_distributed()
        return self._result(None)

    def _result(self, error: BaseException | None) -> Result:
        best = [(self.spec.storage.checkpoint_at(e.name), dict(e.metrics)) for e in self.book.entries]
        latest = self.book.latest
        result = Result(metrics=self.latest_metrics, checkpoint=self.spec.storage.checkpoint_at(latest.name)
                        if latest is not None else None, error=error, path=self.spec.storage.run_path,
                        metrics_dataframe=rows_to_dataframe(self.rows), best_checkpoints=best,
                        _storage_filesystem=None if self.spec.storage.local else self.spec.storage.filesystem)
        result.return_value = self.return_value  # type: ignore[attr-defined]
        return result

    def _context(self, rank: int, world: int, local_rank: int, local_world: int, node_rank: int) -> TrainContext:
        st = self.spec.storage
        return TrainContext(experiment_name=st.experiment_name, trial_name=self.spec.trial_name or st.trial_name,
                            trial_id=self.spec.trial_id, trial_dir=st.run_path, world_size=world, world_rank=rank,
                            local_rank=local_rank, local_world_size=local_world, node_rank=node_rank,
                            storage_path=st.run_path, metadata=dict(self.spec.metadata))

    def _handle_round(self, events: list[Event]) -> bool:
        """One event per rank; True when the loop finished on every rank."""
        kinds = {e.kind for e in events}
        if kinds == {"done"}:
            self.return_value = events[0].value
            return True
        if kinds != {"report"}:
            ranks = [i for i, e in enumerate(events) if e.kind == "done"]
            raise RuntimeError(f"ranks {ranks} returned from train_loop_per_worker while the others called "
                               "train.report(): every worker must call train.report() the same number of times")
        names = {e.checkpoint_dir_name for e in events if e.checkpoint_dir_name is not None}
        metrics = dict(events[0].metrics or {})
        name = min(names) if names else None
        checkpoint = None
        if name is not None:
            for gone in self.book.register(Entry(self.next_index, name, metrics)):
                self.spec.storage.delete(gone.name)
            checkpoint = self.spec.storage.checkpoint_at(name)
        self.next_index += 1
        self.latest_metrics = metrics
        self.rows.append(metrics)
        self._append_row(metrics, name)
        self._save_state()
        for cb in self._callbacks:
            cb.after_report(run_context=self, metrics=[dict(e.metrics or {}) for e in events], checkpoint=checkpoint)
        if self.on_report is not None:
            self.on_report(metrics, checkpoint)
        return False

    def _run_local(self) -> None:
        """``num_workers=0``: the loop in this process, world size 1, reports handled in place."""
        spec = self.spec
        shards = {k: ds.iterator() if hasattr(ds, "iterator") else ds for k, ds in spec.datasets.items()}
        session = WorkerSession(self._context(0, 1, 0, 1, 0), spec.resume_from, spec.storage,
                                self._handle_local_event, shards, self.next_index)
        outer = get_session()  # a Tune trial's session, when this run is one: it comes back after
        init_session(session)
        try:
            self.return_value = run_loop(spec.fn, spec.config)
        finally:
            shutdown_session()
            if outer is not None:
                init_session(outer)

    def _handle_local_event(self, event: Event) -> None:
        self._handle_round([event])

    def _run_distributed(self) -> None:
        spec = self.spec
        max_failures = spec.run_config.failure_config.max_failures  # type: ignore[union-attr]
        while True:
            group = WorkerGroup(spec.scaling.num_workers, spec.scaling._resources_per_worker_not_none,
                                spec.scaling.placement_strategy, preload=spec.backend.preload_modules)
            try:
                self._run_group(group)
                return
            except _GroupFailed as failed:
                self.failures += 1
                for cb in self._callbacks:
                    if hasattr(cb, "after_exception"):
                        cb.after_exception(run_context=self, worker_exceptions=failed.failures)
                if not should_retry(self.failures, max_failures):
                    cause = min(failed.failures.items(), key=lambda kv: (not isinstance(kv[1], _DEATHS), kv[0]))[1]
                    raise training_failed(failed.message, failed.failures) from cause
                log.warning("Train: %s; restarting the worker group (failure %d of %s) from %s", failed.message,
                            self.failures, "unlimited" if max_failures < 0 else max_failures,
                            self.book.latest.name if self.book.latest else "the start")
                if self.book.latest is not None:
                    spec.resume_from = spec.storage.checkpoint_at(self.book.latest.name)
            finally:
                group.shutdown()

    def _run_group(self, group: WorkerGroup) -> None:
        spec = self.spec
        try:
            slots = group.start()
        except _DEATHS as exc:
            raise _GroupFailed({-1: exc}, f"a worker died while the group started: {exc}") from exc
        n = len(slots)
        contexts = [self._context(s.rank, n, s.local_rank, s.local_world_size, s.node_rank) for s in slots]
        workers = group.workers
        port = tray.get(workers[0].free_port.remote()) if spec.backend.needs_rendezvous_port else None
        envs = spec.backend.worker_env(slots, port, spec.scaling.use_gpu)
        self._gather(group, [w.setup_backend.remote(spec.backend, envs[i], contexts[i])
                             for i, w in enumerate(workers)])
        shards = self._shards(n)
        self._gather(group, [w.start.remote(spec.fn, spec.config, contexts[i], spec.resume_from, spec.storage,
                                            shards[i], self.next_index) for i, w in enumerate(workers)])
        self._poll(group)

    def _shards(self, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        if self.spec.datasets:
            self._warn_if_no_cpu_left_for_data(n)
        for key, ds in self.spec.datasets.items():
            for i, it in enumerate(ds.streaming_split(n, equal=True)):
                out[i][key] = it
        return out

    def _warn_if_no_cpu_left_for_data(self, n: int) -> None:
        total = float(tray.cluster_resources().get("CPU", 0.0))
        used = self.spec.scaling.num_cpus_per_worker * n
        if total - used < 1.0:
            log.warning("Train: the %d workers hold %g of the cluster's %g CPUs, so the datasets' tasks (which need "
                        "a CPU each) may wait for them forever; give the workers fewer CPUs "
                        "(ScalingConfig(resources_per_worker={'CPU': ...})) or the cluster more", n, used, total)

    def _gather(self, group: WorkerGroup, refs: list[Any]) -> list[Any]:
        """Get every rank's reply, turning the first failure into _GroupFailed."""
        rank_of = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        values: dict[int, Any] = {}
        while pending:
            ready, pending = tray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    values[rank_of[ref]] = tray.get(ref)
                except Exception as exc:  # noqa: BLE001 - every failure restarts the group
                    self._fail(group, {rank_of[ref]: exc}, pending, rank_of)
        return [values[i] for i in range(len(refs))]

    def _fail(self, group: WorkerGroup, failures: dict[int, BaseException], pending: list[Any],
              rank_of: dict[Any, int]) -> None:
        """Collect the other ranks' errors, then raise _GroupFailed. When the first is not a death, the
        others get a moment (DEATH_GRACE_S): a peer's death often shows first as a collective's error
        on a live rank ("connection reset by peer"), and the death is the cause to name."""
        if pending:
            wait_s = 0 if any(isinstance(e, _DEATHS) for e in failures.values()) else DEATH_GRACE_S
            ready, _ = tray.wait(pending, num_returns=len(pending), timeout=wait_s)
            for ref in ready:
                try:
                    tray.get(ref)
                except Exception as exc:  # noqa: BLE001
                    failures[rank_of[ref]] = exc
        lines = []
        for rank, err in sorted(failures.items(), key=lambda kv: (not isinstance(kv[1], _DEATHS), kv[0])):
            how = "died:" if isinstance(err, _DEATHS) else "raised"
            lines.append(f"{group.describe(rank)} {how} {err}")
        raise _GroupFailed(failures, "\n".join(lines))

    def _poll(self, group: WorkerGroup) -> None:
        workers = group.workers
        queues: list[deque[Event]] = [deque() for _ in workers]
        pending: dict[Any, int] = {w.next_event.remote(): i for i, w in enumerate(workers)}
        while True:
            ready, _ = tray.wait(list(pending), num_returns=1)
            ref = ready[0]
            rank = pending.pop(ref)
            try:
                event = tray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a death or the loop's own exception
                self._fail(group, {rank: exc}, list(pending), dict(pending))
            queues[rank].append(event)
            if event.kind == "report":
                pending[workers[rank].next_event.remote()] = rank
            while all(queues):
                if self._handle_round([q.popleft() for q in queues]):
                    return
