"""The logical plan and its fusion into stages: pure, no I/O, nothing of tray.

A dataset is a source (read tasks, or blocks already made) and a chain of operators. Before
running, consecutive one-to-one operators are fused into one stage, so a block is read,
mapped, filtered and partially aggregated by a single task, as Ray's operator fusion does:

* a map runs where the stage before it runs when both ask for the same resources and the
  stage does not already run in an actor pool (task -> task, task -> actor pool fuse; an
  actor pool never fuses forward, its actors would be held by someone else's work);
* an all-to-all operator (shuffle, sort, groupby, repartition) is a barrier: it may bring a
  ``pre`` map (a partial aggregation) that fuses into the stage before it;
* limit, union and zip are stages of their own.

Transforms are callables ``Iterator[block] -> Iterator[block]``; fusing composes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

Transform = Callable[[Iterator[Any]], Iterator[Any]]


@attrs.frozen
class TaskCompute:
    """Run a stage as one task per input, at most ``size`` at once (None: as the cluster allows)."""

    size: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise ValueError(f"a task pool's size must be a positive int, got {self.size!r}")

    def merged(self, other: TaskCompute | ActorCompute) -> TaskCompute | ActorCompute:
        """The compute of a stage fused from this one and ``other`` after it (the tighter bound)."""
        if isinstance(other, ActorCompute) or self.size is None:
            return other
        if other.size is None:
            return self
        return TaskCompute(min(self.size, other.size))


@attrs.frozen
class ActorCompute:
    """Run a stage in a pool of ``min_size``..``max_size`` actors, each building ``fn`` once."""

    min_size: int
    max_size: int
    max_tasks_in_flight_per_actor: int = 4

    def __attrs_post_init__(self) -> None:
        if self.min_size < 1 or self.max_size < self.min_size:
            raise ValueError(f"an actor pool needs 1 <= min_size <= max_size, got {self.min_size}..{self.max_size}")
        if self.max_tasks_in_flight_per_actor < 1:
            raise ValueError("max_tasks_in_flight_per_actor must be at least 1")


@attrs.frozen
class Source:
    """Where blocks come from: ``read_tasks`` (callables each yielding blocks, run remotely) or
    ``bundles`` (blocks already in the store: ``(ref, meta)`` pairs)."""

    name: str
    read_tasks: tuple[Any, ...] | None = None
    bundles: tuple[Any, ...] | None = None
    columns: tuple[str, ...] | None = None  # known before running, when known
    concurrency: int | None = None  # read tasks in flight at most (None: as the cluster allows)

    def __attrs_post_init__(self) -> None:
        if (self.read_tasks is None) == (self.bundles is None):
            raise ValueError("a source has read tasks or bundles, not both")
        if self.concurrency is not None and (not isinstance(self.concurrency, int) or self.concurrency < 1):
            raise ValueError(f"concurrency must be a positive int, got {self.concurrency!r}")


@attrs.frozen
class MapOp:
    """A one-to-one stage of blocks: map, map_batches, flat_map, filter, column edits."""

    name: str
    transform: Transform
    compute: TaskCompute | ActorCompute = TaskCompute()
    remote_args: tuple[tuple[str, Any], ...] = ()
    init: Callable[[], Transform] | None = None  # actor pools: builds the transform once per actor


@attrs.frozen
class AllToAll:
    """A barrier over every block: ``run(bundles, context) -> bundles``; ``pre`` maps each block first."""

    name: str
    run: Callable[..., Any]
    pre: MapOp | None = None


@attrs.frozen
class Limit:
    n: int

    def __attrs_post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"limit must be >= 0, got {self.n}")


@attrs.frozen
class Union:
    others: tuple[Any, ...]  # Plans


@attrs.frozen
class Zip:
    other: Any  # a Plan


Op = MapOp | AllToAll | Limit | Union | Zip


@attrs.frozen
class Plan:
    source: Source
    ops: tuple[Op, ...] = ()

    def with_op(self, op: Op) -> Plan:
        return Plan(self.source, (*self.ops, op))

    def names(self) -> list[str]:
        return [self.source.name] + [_op_name(op) for op in self.ops]


def _op_name(op: Op) -> str:
    if isinstance(op, (MapOp, AllToAll)):
        return op.name
    if isinstance(op, Limit):
        return f"limit={op.n}"
    return type(op).__name__


# --- physical stages -------------------------------------------------------------------------


@attrs.frozen
class MapStage:
    """Fused maps: ``transforms`` applied in order to each input (a block, or a read task's output)."""

    names: tuple[str, ...]
    transforms: tuple[Transform, ...]
    compute: TaskCompute | ActorCompute
    remote_args: tuple[tuple[str, Any], ...]
    reads: bool  # inputs are read tasks (the source), not blocks
    inits: tuple[Callable[[], Transform] | None, ...] = ()

    @property
    def name(self) -> str:
        return "->".join(self.names)


@attrs.frozen
class SourceStage:
    source: Source


@attrs.frozen
class BarrierStage:
    op: AllToAll


@attrs.frozen
class LimitStage:
    n: int


@attrs.frozen
class UnionStage:
    others: tuple[Plan, ...]


@attrs.frozen
class ZipStage:
    other: Plan


Stage = MapStage | SourceStage | BarrierStage | LimitStage | UnionStage | ZipStage


def compose(transforms: Iterable[Transform]) -> Transform:
    """One transform applying each of ``transforms`` in order."""
    chain = tuple(transforms)

    def run(blocks: Iterator[Any]) -> Iterator[Any]:
        for t in chain:
            blocks = t(blocks)
        return blocks

    return run


def _expand(ops: Iterable[Op]) -> list[Op]:
    """A barrier's ``pre`` map becomes a map of its own before it (so it can fuse)."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, AllToAll) and op.pre is not None:
            out.append(op.pre)
        out.append(op)
    return out


def _can_fuse(stage: Stage, op: MapOp) -> bool:
    if not isinstance(stage, MapStage) or isinstance(stage.compute, ActorCompute):
        return False
    return stage.remote_args == op.remote_args or (stage.reads and len(stage.transforms) == 0)


def fuse(plan: Plan, *, fuse_maps: bool = True) -> list[Stage]:
    """The stages that run ``plan`` (its source first), maps fused where the rules above allow."""
    stages: list[Stage] = []
    if plan.source.read_tasks is not None:
        stages.append(MapStage((plan.source.name,), (), TaskCompute(plan.source.concurrency), (), True, ()))
    else:
        stages.append(SourceStage(plan.source))
    for op in _expand(plan.ops):
        if isinstance(op, MapOp):
            last = stages[-1]
            if fuse_maps and _can_fuse(last, op):
                assert isinstance(last, MapStage)
                assert isinstance(last.compute, TaskCompute)
                stages[-1] = MapStage((*last.names, op.name), (*last.transforms, op.transform),
                                      last.compute.merged(op.compute),
                                      op.remote_args if not (last.reads and not last.transforms) or op.remote_args
                                      else last.remote_args,
                                      last.reads, (*last.inits, op.init))
            else:
                stages.append(MapStage((op.name,), (op.transform,), op.compute, op.remote_args, False, (op.init,)))
        elif isinstance(op, AllToAll):
            stages.append(BarrierStage(op))
        elif isinstance(op, Limit):
            stages.append(LimitStage(op.n))
        elif isinstance(op, Union):
            stages.append(UnionStage(op.others))
        elif isinstance(op, Zip):
            stages.append(ZipStage(op.other))
        else:  # pragma: no cover - the Op union is closed
            raise TypeError(f"unknown operator {op!r}")
    return stages
