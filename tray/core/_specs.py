"""What a submitted task or actor call carries, and how it is built from a ``.remote()`` call.

Arguments are serialized at submission (so an unpicklable argument fails at
``.remote()``, naming it, and a later mutation of an argument does not leak in); the
ObjectRefs they contain are pinned until the call is done. Top-level ObjectRef
arguments are dependencies: the call waits for them, and the worker gets their values
(inline when the submitter holds them); nested ones stay refs (Ray's rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store import Stored
from ._objects import READY, ObjectRef

_ONE_CPU = {"CPU": 10_000}  # the default shape (cluster._resources.UNIT units): left off the wire

if TYPE_CHECKING:
    from ..actors import ActorRef
    from ..store import Blob
    from ._generators import Stream
    from ._objects import ObjectTable


class Args:
    """Serialized arguments with their dependencies and pins.

    Large arguments go into the node's object store as one object (Ray puts each large
    argument; one object for all of them is as good and cheaper): the worker reads them
    in place, and the object is freed when the call is done with them.
    """

    __slots__ = ("blob", "deps", "pinned", "top")

    def __init__(self, table: ObjectTable, args: tuple, kwargs: dict, what: str) -> None:
        key = table.new_id()
        try:
            self.blob, refs = table.encode_collecting((args, kwargs), key)
        except TypeError as exc:
            raise TypeError(f"{what}: an argument {exc}") from None
        top = [a for a in args if type(a) is ObjectRef] + [v for v in kwargs.values() if type(v) is ObjectRef]
        self.top = top
        self.deps = [(r._id, r._owner) for r in top]
        self.pinned = [r._id for r in refs]
        if type(self.blob) is Stored:
            table.add_stored(key, self.blob)
            self.pinned.append(key)
        table.pin(self.pinned, +1)

    def stored(self, table: ObjectTable) -> list[Stored]:
        """The stored values the worker will read: the arguments themselves if large, and the
        values of top-level ref arguments (pinned while the task runs)."""
        found = [self.blob] if type(self.blob) is Stored else []
        entries = table.entries
        for oid, _owner in self.deps:
            entry = entries.get(oid)
            if entry is not None and type(entry.blob) is Stored:
                found.append(entry.blob)
        return found

    def inline(self, table: ObjectTable) -> dict[str, Blob]:
        """Values of ready top-level refs this process holds, sent along to save the worker a fetch."""
        out: dict[str, Blob] = {}
        entries = table.entries
        for oid, _owner in self.deps:
            entry = entries.get(oid)
            if entry is not None and entry.state == READY:
                out[oid] = entry.blob  # type: ignore[assignment]  # READY: its blob is set
        return out


class _Submission:
    """What tasks and actor calls share: serialized arguments, whose refs they depend on and pin."""

    __slots__ = ()
    args: Args

    @property
    def deps(self) -> list[tuple[str, ActorRef | None]]:
        return self.args.deps

    @property
    def pinned(self) -> list[str]:
        return self.args.pinned


class TaskSpec(_Submission):
    """A task on its way to a worker."""

    __slots__ = ("task_id", "name", "fn_id", "fn_blob", "args", "return_ids", "num_returns", "max_retries",
                 "retry_exceptions", "shape", "strategy", "table", "stream", "remade", "renv")

    def __init__(self, task_id: str, name: str, fn_id: str, fn_blob: bytes, args: Args, return_ids: list[str],
                 num_returns: int, max_retries: int, retry_exceptions: Any, shape: dict[str, int],
                 strategy: tuple | None, table: ObjectTable, renv: tuple | None = None) -> None:
        self.task_id, self.name, self.fn_id, self.fn_blob = task_id, name, fn_id, fn_blob
        self.args, self.return_ids, self.num_returns = args, return_ids, num_returns
        self.max_retries, self.retry_exceptions, self.shape = max_retries, retry_exceptions, shape
        self.strategy = strategy  # None, ("spread",) or ("node", node_id, soft); see _remote.placement
        self.table = table
        self.stream: Stream | None = None  # a streaming task's items, as they come
        self.remade = 0  # times it ran again to re-make its lost results (within max_retries)
        self.renv = renv  # its runtime_env (key, env) for its lease; None: the default one

    def wire(self, owner: ActorRef | None, gpus: tuple[int, ...] = ()) -> tuple:
        """What the worker gets; ``owner`` is where a streaming task sends its items, and
        who owns the large results the worker stores; ``gpus``: its lease's, by id."""
        wire = (self.task_id, self.name, self.fn_id, self.fn_blob, self.args.blob, self.args.inline(self.table),
                self.num_returns, owner if self.stream is not None else None, self.return_ids, self.table.uid)
        if gpus:
            return (*wire, self.shape, gpus)
        return wire if self.shape == _ONE_CPU else (*wire, self.shape)  # the worker's assigned resources

    def should_retry(self, exc: BaseException) -> bool:
        """Whether an application error is retried (``retry_exceptions``, Ray's rule)."""
        rule = self.retry_exceptions
        if rule is True:
            return isinstance(exc, Exception)
        if rule:
            return isinstance(exc, tuple(rule))
        return False


class ActorCall(_Submission):
    """A method call on its way to an actor."""

    __slots__ = ("actor_id", "method", "args", "return_ids", "num_returns", "table", "retries_left", "group", "stream")

    def __init__(self, actor_id: str, method: str, args: Args, return_ids: list[str], num_returns: int,
                 table: ObjectTable, retries: int, group: str | None = None) -> None:
        self.actor_id, self.method, self.args = actor_id, method, args
        self.return_ids, self.num_returns, self.table = return_ids, num_returns, table
        self.retries_left = retries  # re-sends if the actor dies while handling it (-1: always)
        self.group = group  # its concurrency group (None: the default group)
        self.stream: Stream | None = None  # a streaming call's items, as they come (its return_ids are none)

    def wire(self) -> tuple:
        keys = self.return_ids if self.stream is None else [self.stream.task_id]  # a stream's items are keyed by it
        wire = (self.method, self.args.blob, self.args.inline(self.table), self.num_returns, keys)
        return wire if self.group is None else (*wire, self.group)
