"""The streaming executor: runs a plan's stages as tray tasks and actor pools and streams the
output blocks, in order, to whoever consumes them.

Each stage is a generator over ``(ref, BlockMeta)`` bundles that pulls its input from the
stage before it. A stage keeps at most a window of tasks in flight; the window is sized so
that the bytes of its running tasks' outputs stay under the stage's share of the budget
(``DataContext.execution_options.resource_limits.object_store_memory``, default half the
store): a stage whose consumer stops pulling stops launching, so a dataset many times larger
than the store streams through without spilling.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pyarrow as pa

import tray

from . import _blocks, _plan
from .context import DataContext


@attrs.frozen
class BlockMeta:
    num_rows: int
    size_bytes: int
    schema: pa.Schema | None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    pid: int = 0


Bundle = tuple[Any, BlockMeta]


def meta_of(block: pa.Table, wall: float = 0.0, cpu: float = 0.0) -> BlockMeta:
    return BlockMeta(block.num_rows, _blocks.size_bytes(block), _blocks.schema_of(block), wall, cpu, os.getpid())


def run_chain(chain: list[Any], reads: bool, item: Any) -> tuple[pa.Table, BlockMeta]:
    """Apply a stage's transforms to one input (a block, or a read task to call) -> one block."""
    t0, c0 = time.perf_counter(), time.process_time()
    blocks: Iterator[pa.Table] = iter(item()) if reads else iter((item,))
    for t in chain:
        blocks = t(blocks)
    out = list(blocks)
    block = _blocks.compact(_blocks.concat(out)) if out else (
        item if not reads else pa.table({}))
    if not out and not reads:
        block = item.slice(0, 0)
    return block, meta_of(block, time.perf_counter() - t0, time.process_time() - c0)


@attrs.define
class StageStats:
    name: str
    metas: list[BlockMeta] = attrs.field(factory=list)
    started: float | None = None
    ended: float | None = None
    extra: str = ""

    def add(self, meta: BlockMeta) -> None:
        self.metas.append(meta)

    def summary(self, index: int) -> str:
        n = len(self.metas)
        wall = (self.ended or time.perf_counter()) - (self.started or time.perf_counter())
        lines = [f"Operator {index} {self.name}: {n} tasks executed, {n} blocks produced in {wall:.2f}s"]
        if n:
            def row(label: str, vals: list[float], fmt: Any) -> str:
                return (f"* {label}: {fmt(min(vals))} min, {fmt(max(vals))} max, "
                        f"{fmt(sum(vals) / len(vals))} mean, {fmt(sum(vals))} total")

            ms = lambda v: f"{v * 1000:.2f}ms" if v < 1 else f"{v:.2f}s"  # noqa: E731
            num = lambda v: f"{int(round(v))}"  # noqa: E731
            lines.append(row("Remote wall time", [m.wall_s for m in self.metas], ms))
            lines.append(row("Remote cpu time", [m.cpu_s for m in self.metas], ms))
            lines.append(row("Output num rows per block", [m.num_rows for m in self.metas], num))
            lines.append(row("Output size bytes per block", [m.size_bytes for m in self.metas], num))
            rows = sum(m.num_rows for m in self.metas)
            lines.append(f"* Operator throughput: {rows / wall if wall > 0 else 0:,.0f} rows/s")
            lines.append(f"* Tasks per worker process: {len({m.pid for m in self.metas})} processes used")
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines)


@attrs.define
class ExecStats:
    stages: list[StageStats] = attrs.field(factory=list)
    started: float = attrs.field(factory=time.perf_counter)
    ended: float | None = None

    def stage(self, name: str) -> StageStats:
        s = StageStats(name)
        self.stages.append(s)
        return s

    def to_string(self) -> str:
        parts = [s.summary(i + 1) for i, s in enumerate(self.stages)]
        total = (self.ended or time.perf_counter()) - self.started
        parts.append(f"Dataset throughput: total wall time {total:.2f}s")
        return "\n\n".join(parts)


class _Progress:
    """One line per operator on a terminal (stderr), updated as blocks finish.

    ``ExecutionOptions.verbose_progress`` (on by default, as in Ray) shows one per operator;
    off, only all-to-all operators and the dataset as a whole (``per_operator=False``) show."""

    def __init__(self, name: str, per_operator: bool = True) -> None:
        ctx = DataContext.get_current()
        wanted = ctx.execution_options.verbose_progress or not per_operator
        self.on = (wanted and ctx.enable_progress_bars and sys.stderr.isatty()
                   and os.environ.get("TRAY_PROGRESS_BAR") != "0")
        self.name, self.blocks, self.rows, self.last = name, 0, 0, 0.0

    def update(self, meta: BlockMeta) -> None:
        self.blocks += 1
        self.rows += meta.num_rows
        now = time.monotonic()
        if self.on and now - self.last > 0.1:
            self.last = now
            sys.stderr.write(f"\r- {self.name}: {self.blocks} blocks, {self.rows:,} rows  ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on and self.blocks:
            sys.stderr.write(f"\r✔️  {self.name}: {self.blocks} blocks, {self.rows:,} rows\n")
            sys.stderr.flush()


def _budget(ctx: DataContext, n_stages: int) -> tuple[float, float]:
    """(bytes in flight one map stage may hold, CPUs of the cluster)."""
    res = tray.cluster_resources()
    limits = ctx.execution_options.resource_limits
    store = limits.object_store_memory or res.get("object_store_memory", 2**30) * 0.5
    cpus = limits.cpu or res.get("CPU", 1.0)
    return max(float(store) / max(n_stages, 1), 1.0), float(cpus)


class _Window:
    """How many tasks a stage may have running: by CPUs, and by bytes once outputs are seen."""

    def __init__(self, budget: float, slots: int) -> None:
        self.budget, self.slots = budget, max(slots, 1)
        self.seen = 0
        self.bytes = 0

    def observe(self, meta: BlockMeta) -> None:
        self.seen += 1
        self.bytes += meta.size_bytes

    def limit(self) -> int:
        if not self.seen:
            return self.slots
        avg = max(self.bytes / self.seen, 1.0)
        return max(1, min(self.slots, int(self.budget // avg)))


def _remote_options(remote_args: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    opts = dict(remote_args)
    opts.setdefault("num_cpus", 1)
    return opts


def _map_task(stage: _plan.MapStage) -> Any:
    chain = [t if init is None else init() for t, init in
             zip(stage.transforms, stage.inits or (None,) * len(stage.transforms), strict=False)]
    reads = stage.reads

    def run(item: Any) -> tuple[pa.Table, BlockMeta]:
        return run_chain(chain, reads, item)

    run.__name__ = run.__qualname__ = stage.name
    return tray.remote(run).options(num_returns=2, **_remote_options(stage.remote_args))


class _MapWorker:
    """An actor-pool member: builds the stage's transforms (a callable class's instance) once."""

    def __init__(self, transforms: tuple[Any, ...], inits: tuple[Any, ...], reads: bool) -> None:
        self.chain = [t if init is None else init() for t, init in zip(transforms, inits, strict=False)]
        self.reads = reads

    def ready(self) -> bool:
        return True

    @tray.method(num_returns=2)
    def run(self, item: Any) -> tuple[pa.Table, BlockMeta]:
        return run_chain(self.chain, self.reads, item)


def _cpu_slots(remote_args: tuple[tuple[str, Any], ...], cpus: float, size: int | None = None) -> int:
    """Tasks a stage may run at once: what the CPUs allow (one more, to hide latency), at most
    the task pool's ``size`` (``concurrency=``)."""
    need = float(_remote_options(remote_args).get("num_cpus") or 0)
    slots = int(cpus / need) + 1 if need > 0 else int(cpus) * 2 + 2
    return slots if size is None else min(slots, size)


def _split_block(block: pa.Table, pieces: int) -> tuple[Any, ...]:
    """``block`` cut into ``pieces`` blocks of about equal rows: (their metadata, *blocks)."""
    bounds = [block.num_rows * i // pieces for i in range(pieces + 1)]
    out = [_blocks.compact(block.slice(a, b - a)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return ([meta_of(b) for b in out], *out)


def split_large(bundles: Iterator[Bundle], max_bytes: int) -> Iterator[Bundle]:
    """Each bundle, or, when its block is over ``max_bytes`` (``target_max_block_size``), the
    blocks of about ``max_bytes`` it is cut into, in order."""
    for ref, meta in bundles:
        if meta.size_bytes <= max_bytes or meta.num_rows < 2:
            yield ref, meta
            continue
        pieces = min(meta.num_rows, -(-meta.size_bytes // max_bytes))
        refs = tray.remote(_split_block).options(num_returns=pieces + 1, num_cpus=0).remote(ref, pieces)
        del ref
        yield from zip(refs[1:], tray.get(refs[0]), strict=True)


class Executor:
    """Runs one plan; ``bundles()`` streams its output, ``stats`` says how it went."""

    def __init__(self, plan: _plan.Plan, stats: ExecStats | None = None) -> None:
        self.plan = plan
        self.ctx = DataContext.get_current()
        self.stats = stats if stats is not None else ExecStats()
        self.stages = _plan.fuse(plan)

    def bundles(self) -> Iterator[Bundle]:
        n_maps = sum(isinstance(s, _plan.MapStage) for s in self.stages)
        budget, cpus = _budget(self.ctx, n_maps)
        it: Iterator[Bundle] = iter(())
        for stage in self.stages:
            it = self._run_stage(stage, it, budget, cpus)
        progress = _Progress("Dataset", per_operator=False)
        try:
            for bundle in it:
                progress.update(bundle[1])
                yield bundle
        finally:
            progress.close()
            self.stats.ended = time.perf_counter()

    def _run_stage(self, stage: _plan.Stage, upstream: Iterator[Bundle], budget: float, cpus: float
                   ) -> Iterator[Bundle]:
        if isinstance(stage, _plan.SourceStage):
            return self._source(stage)
        if isinstance(stage, _plan.MapStage):
            if isinstance(stage.compute, _plan.ActorCompute):
                return self._actor_stage(stage, upstream, budget, cpus)
            return self._task_stage(stage, upstream, budget, cpus)
        if isinstance(stage, _plan.LimitStage):
            return _limit(upstream, stage.n)
        if isinstance(stage, _plan.BarrierStage):
            return self._barrier(stage, upstream)
        if isinstance(stage, _plan.UnionStage):
            return self._union(stage, upstream)
        if isinstance(stage, _plan.ZipStage):
            return self._zip(stage, upstream)
        raise TypeError(f"unknown stage {stage!r}")  # pragma: no cover

    def _source(self, stage: _plan.SourceStage) -> Iterator[Bundle]:
        st = self.stats.stage(stage.source.name)
        st.started = time.perf_counter()
        for b in stage.source.bundles or ():
            st.add(b[1])
            yield b
        st.ended = time.perf_counter()

    def _task_stage(self, stage: _plan.MapStage, upstream: Iterator[Bundle], budget: float, cpus: float
                    ) -> Iterator[Bundle]:
        fn = _map_task(stage)
        size = stage.compute.size if isinstance(stage.compute, _plan.TaskCompute) else None
        window = _Window(budget, _cpu_slots(stage.remote_args, cpus, size))
        inputs: Iterator[Any] = iter(self.plan.source.read_tasks or ()) if stage.reads \
            else (ref for ref, _ in upstream)
        def submit(item: Any) -> tuple[Any, Any, None]:
            block_ref, meta_ref = fn.remote(item)
            return block_ref, meta_ref, None

        yield from split_large(self._drive(stage.name, inputs, submit, window), self.ctx.target_max_block_size)

    def _drive(self, name: str, inputs: Iterator[Any], submit: Any, window: _Window,
               on_done: Any = None) -> Iterator[Bundle]:
        """Keep up to ``window.limit()`` tasks running; yield their outputs in input order, or,
        when ``ExecutionOptions.preserve_order`` is off, as they finish."""
        st = self.stats.stage(name)
        progress = _Progress(name)
        running: collections.deque[tuple[Any, Any, Any]] = collections.deque()
        exhausted = False
        ordered = self.ctx.execution_options.preserve_order
        st.started = time.perf_counter()
        try:
            while True:
                while not exhausted and len(running) < window.limit():
                    try:
                        item = next(inputs)
                    except StopIteration:
                        exhausted = True
                        break
                    running.append(submit(item))
                if not running:
                    break
                if ordered or len(running) == 1:
                    block_ref, meta_ref, tag = running.popleft()
                else:
                    ready, _ = tray.wait([m for _, m, _ in running], num_returns=1)
                    first = next(i for i, (_, m, _) in enumerate(running) if m is ready[0])
                    block_ref, meta_ref, tag = running[first]
                    del running[first]
                try:
                    meta = tray.get(meta_ref)
                except Exception as exc:
                    if hasattr(exc, "add_note"):
                        exc.add_note(f"(raised in the dataset operator {name})")
                    raise
                finally:
                    if on_done is not None:
                        on_done(tag)
                window.observe(meta)
                st.add(meta)
                progress.update(meta)
                yield block_ref, meta
        finally:
            st.ended = time.perf_counter()
            progress.close()

    def _actor_stage(self, stage: _plan.MapStage, upstream: Iterator[Bundle], budget: float, cpus: float
                     ) -> Iterator[Bundle]:
        compute = stage.compute
        assert isinstance(compute, _plan.ActorCompute)
        opts = _remote_options(stage.remote_args)
        cls = tray.remote(_MapWorker).options(**opts)
        inits = stage.inits or (None,) * len(stage.transforms)
        actors: list[Any] = [cls.remote(stage.transforms, inits, stage.reads) for _ in range(compute.min_size)]
        load = {id(a): 0 for a in actors}
        per_actor = compute.max_tasks_in_flight_per_actor
        window = _Window(budget, compute.max_size * per_actor)
        inputs: Iterator[Any] = iter(self.plan.source.read_tasks or ()) if stage.reads \
            else (ref for ref, _ in upstream)

        def submit(item: Any) -> tuple[Any, Any, Any]:
            actor = min(actors, key=lambda a: load[id(a)])
            if load[id(actor)] >= per_actor and len(actors) < compute.max_size:
                actor = cls.remote(stage.transforms, inits, stage.reads)
                actors.append(actor)
                load[id(actor)] = 0
            load[id(actor)] += 1
            block_ref, meta_ref = actor.run.remote(item)
            return block_ref, meta_ref, actor

        def done(actor: Any) -> None:
            load[id(actor)] -= 1

        max_size = compute.max_size

        class _ActorWindow(_Window):
            def limit(self) -> int:
                return min(super().limit(), len(actors) * per_actor if len(actors) >= max_size
                           else max_size * per_actor)

        window.__class__ = _ActorWindow
        try:
            yield from split_large(self._drive(stage.name, inputs, submit, window, done),
                                   self.ctx.target_max_block_size)
        finally:
            for a in actors:
                tray.kill(a)

    def _barrier(self, stage: _plan.BarrierStage, upstream: Iterator[Bundle]) -> Iterator[Bundle]:
        inputs = list(upstream)
        st = self.stats.stage(stage.op.name)
        st.started = time.perf_counter()
        out = stage.op.run(inputs)
        progress = _Progress(stage.op.name, per_operator=False)
        for _, meta in out:
            st.add(meta)
            progress.update(meta)
        progress.close()
        st.ended = time.perf_counter()
        yield from out

    def _union(self, stage: _plan.UnionStage, upstream: Iterator[Bundle]) -> Iterator[Bundle]:
        yield from upstream
        for other in stage.others:
            yield from Executor(other, self.stats).bundles()

    def _zip(self, stage: _plan.ZipStage, upstream: Iterator[Bundle]) -> Iterator[Bundle]:
        from ._shuffle import zip_bundles

        left = list(upstream)
        right = list(Executor(stage.other, self.stats).bundles())
        st = self.stats.stage("Zip")
        st.started = time.perf_counter()
        out = zip_bundles(left, right)
        for _, meta in out:
            st.add(meta)
        st.ended = time.perf_counter()
        yield from out


def _limit(upstream: Iterator[Bundle], n: int) -> Iterator[Bundle]:
    left = n
    if left <= 0:
        return
    for ref, meta in upstream:
        if meta.num_rows <= left:
            left -= meta.num_rows
            yield ref, meta
        else:
            block = _blocks.compact(tray.get(ref).slice(0, left))
            yield tray.put(block), meta_of(block)
            left = 0
        if left <= 0:
            break


def execute(plan: _plan.Plan, stats: ExecStats | None = None) -> Iterator[Bundle]:
    """Stream ``plan``'s output bundles (refs and metadata), in order."""
    return Executor(plan, stats).bundles()
