"""Values in and out of this process's object table from user code: put, get, wait, and
``await ref`` from trio or asyncio code. A thread that waits here lends its task's CPUs to
the node (so nested tasks cannot deadlock).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..actors._crossing import Signal, wake, wake_asyncio
from ..exceptions import GetTimeoutError, ObjectLostError
from . import _process, _watch
from ._generators import ObjectRefGenerator
from ._objects import PENDING, READY, ObjectRef

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from ._runtime import Runtime


def put(value: Any) -> ObjectRef:
    """Store ``value`` (serialized now: later changes to it are not seen) and return its ref.

    Args:
        value: any picklable value (not an ObjectRef); large ones go to the shared-memory store.
    """
    if isinstance(value, ObjectRef):
        raise TypeError("tray.put() of an ObjectRef is not allowed; pass the ref itself instead")
    rt = _process.runtime_for_call()
    table = rt.table
    table.collect()
    oid = table.new_id()
    blob, inside = table.encode_collecting(value, oid)
    table.add_owned(oid)
    table.hold_inside(oid, [r._id for r in inside])  # refs and actor handles inside live while it does (Ray)
    ref = ObjectRef(oid, None, table)
    table.resolve(oid, blob)
    return ref


def _check_refs(refs: Any, what: str) -> list[ObjectRef]:
    if not isinstance(refs, (list, tuple)):
        raise ValueError(f"{what} expects an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}"
                         " (Ray's ValueError)")
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"{what} expects ObjectRefs, got {type(r).__name__}: {r!r}")
    return list(refs)


def get(object_refs: ObjectRef | Sequence[ObjectRef], *, timeout: float | None = None) -> Any:
    """The value(s) of ``object_refs``, waiting for them; raises a task's error as its own.

    Args:
        object_refs: one ObjectRef (its value is returned) or a list of them (a list of values).
        timeout: seconds to wait at most (None: no limit).

    Raises :class:`~tray.exceptions.GetTimeoutError` if ``timeout`` seconds pass first.
    """
    if isinstance(object_refs, ObjectRef):
        return _get_one(object_refs, _deadline(timeout), None)
    refs = _check_refs(object_refs, "tray.get()")
    deadline = _deadline(timeout)
    watch = _watch.Watch(refs)
    try:
        return [_get_one(r, deadline, watch) for r in refs]
    finally:
        if watch.drawn:
            watch.finish(_process.current())  # type: ignore[arg-type]


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    return time.monotonic() + timeout


def _entry(ref: ObjectRef, blocking: bool = True) -> Any:
    """``(runtime, entry)`` of ``ref`` in this process; starts fetching a borrowed value."""
    rt = _process.current()
    if rt is None or ref._table is not rt.table:
        raise RuntimeError(f"{ref!r} belongs to a tray session that was shut down")
    if blocking and rt.in_loop():
        raise RuntimeError("tray.get() would block the runtime's event loop; use `await ref` instead")
    if not blocking:  # awaited, or a future: a call this thread held goes now
        rt.owner.calls.lanes.flush()
    entry = rt.table.entries.get(ref._id)
    if entry is None:
        raise RuntimeError(f"{ref!r} is unknown to this process")
    if entry.state == PENDING and entry.owner is not None:
        rt.soon(rt.owner.waits.ensure_fetch, ref._id, entry.owner)
    return rt, entry


def _get_one(ref: ObjectRef, deadline: float | None, watch: _watch.Watch | None) -> Any:
    rt, entry = _entry(ref)
    if entry.state == PENDING and entry.owner is None:  # ours: maybe an actor call held for its lane
        held = rt.owner.calls.lanes.waited(ref)
        if held is not None:
            with _blocked(rt):
                rt.owner.calls.lanes.call(*held, deadline)
    if entry.state == PENDING:
        done = Signal()
        if rt.table.when_done(ref._id, done.set):
            with _blocked(rt):
                ready = (watch or _watch.Watch([ref])).wait(rt, done, deadline)
            if not ready:
                rt.table.forget_waiter(ref._id, done.set)
                raise GetTimeoutError(f"tray.get() timed out waiting for {ref!r}")
    return value_of(rt, entry, ref._id)


class _blocked:
    """``with _blocked(rt):`` a task that waits lends its CPUs to the node meanwhile (so
    nested tasks cannot deadlock). A class, not a generator: a driver's every waited call
    enters it."""

    __slots__ = ("rt", "lent")

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lent = rt.current_task_id is not None and rt.worker_id is not None

    def __enter__(self) -> None:
        if self.lent:
            self.rt.soon(self.rt.scheduler.worker_blocked.try_tell, self.rt.worker_id)

    def __exit__(self, *exc_info: object) -> None:
        if self.lent:
            self.rt.soon(self.rt.scheduler.worker_unblocked.try_tell, self.rt.worker_id)


def value_of(rt: Runtime, entry: Any, oid: str) -> Any:
    if entry.state == READY:
        return decode(rt, oid, entry.owner, entry.blob)
    err = entry.error
    raise err.with_traceback(None)


def decode(rt: Runtime, oid: str, owner: Any, blob: Any) -> Any:
    """The value in ``blob``; if its stored copy is lost (its node died), the one its owner
    re-makes from lineage (or the owner's reason why it cannot)."""
    try:
        return rt.table.decode(blob)
    except ObjectLostError as lost:
        if rt.in_loop():
            raise
        try:
            with _blocked(rt):  # a task waiting here lends its CPUs: the task that re-makes it may need them
                blob = rt.call(rt.owner.recover_blob, oid, owner, blob)
        except ObjectLostError as why:  # what was lost, and why it cannot be had again
            raise type(why)(f"{lost}; {why}") from None
        return rt.table.decode(blob)


GENERATOR_POLL_S = 0.05
"""How often a ``wait`` that includes streaming generators looks at them again (their end
without a last item resolves no object, so it wakes no one)."""


def wait(
    object_refs: Sequence[ObjectRef | ObjectRefGenerator],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Wait until ``num_returns`` of the refs are ready (or ``timeout``): ``(ready, not_ready)``.

    Args:
        object_refs: a list of distinct ObjectRefs, or streaming generators
            (``ObjectRefGenerator``): one is ready when its next item is, or when it has
            ended (``next`` would stop), as in Ray.
        num_returns: how many must be ready (a failed task's ref counts as ready).
        timeout: seconds to wait at most (None: no limit); fewer may be ready then.
        fetch_local: accepted for Ray's signature: a ready value is read where it is.

    Both lists keep the order of ``object_refs``.
    """
    if not isinstance(object_refs, (list, tuple)):
        raise TypeError(f"tray.wait() expects a list of ObjectRefs, got {type(object_refs).__name__}")
    refs = list(object_refs)
    if not refs:  # Ray's: nothing to wait for, whatever num_returns says
        return [], []
    if not isinstance(num_returns, int) or not 1 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be an int between 1 and {len(refs)} (the refs given), "
                         f"got {num_returns!r}")
    deadline = _deadline(timeout)
    rt = _process.current()
    if rt is not None and rt.owner is not None:
        rt.owner.calls.lanes.flush()  # a call this thread held may make one of them
    table = rt.table if rt is not None else None
    entries = table.entries if table is not None else {}
    seen: set[Any] = set()
    generators = False
    for r in refs:  # one pass: check each, and start fetching borrowed values
        if type(r) is not ObjectRef:
            if isinstance(r, ObjectRefGenerator):
                generators = True
                seen.add(id(r))
                continue
            raise TypeError(f"tray.wait() expects ObjectRefs (or streaming generators), got {type(r).__name__}: {r!r}")
        seen.add(r._id)
        entry = entries.get(r._id)
        if entry is None or r._table is not table or (entry.state == PENDING and entry.owner is not None):
            _entry(r)
    if len(seen) != len(refs):
        raise ValueError("tray.wait() got the same ObjectRef more than once")
    assert rt is not None and table is not None
    # One wake-up for any object that resolves, not one registration per ref: a loop of
    # wait(num_returns=1) over a long list stays linear in the list.
    resolved = Signal()
    table.watchers.append(resolved.set)
    try:
        while True:
            ready = _ready_indices(refs, table.entries, num_returns)
            if len(ready) >= num_returns:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if generators:
                left = GENERATOR_POLL_S if left is None else min(left, GENERATOR_POLL_S)
            with _blocked(rt):
                resolved.wait(left)
    finally:
        table.watchers.remove(resolved.set)
    chosen = set(ready)
    return [refs[i] for i in ready], [r for i, r in enumerate(refs) if i not in chosen]


def _ready_indices(refs: list[Any], entries: dict[str, Any], wanted: int) -> list[int]:
    """Positions of the first ``wanted`` refs that are ready (or failed), in order."""
    ready: list[int] = []
    if wanted == 0:
        return ready
    for i, r in enumerate(refs):
        if type(r) is not ObjectRef:  # a streaming generator: its next item is here, or it has ended
            if r.ready_or_done():
                ready.append(i)
                if len(ready) == wanted:
                    break
            continue
        entry = entries.get(r._id)
        if entry is not None and entry.state != PENDING:
            ready.append(i)
            if len(ready) == wanted:
                break
    return ready


async def await_ref(ref: ObjectRef) -> Any:
    """``await ref`` from trio or asyncio code (in any thread but the runtime's)."""
    import sniffio

    flavor = sniffio.current_async_library()
    if flavor == "asyncio":
        return await asyncio_future(ref)
    import trio

    rt, entry = _entry(ref, blocking=False)
    if entry.state == PENDING:
        done = trio.Event()
        ready = functools.partial(wake, trio.lowlevel.current_trio_token(), done.set)
        if rt.table.when_done(ref._id, ready):
            try:
                await done.wait()
            finally:  # cancelled: stop waiting for the value
                rt.table.forget_waiter(ref._id, ready)
    return value_of(rt, entry, ref._id)


_settler: Any = None  # a thread that reads values for concurrent futures (made on first use)


def concurrent_future(ref: ObjectRef) -> concurrent.futures.Future:
    """``ref.future()``: settled, once the value is ready, by a thread of our own (reading a
    value may need the loop, so never in the loop's thread)."""
    global _settler
    import concurrent.futures

    fut: concurrent.futures.Future = concurrent.futures.Future()
    rt, entry = _entry(ref, blocking=False)

    def settle() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(value_of(rt, entry, ref._id))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            fut.set_exception(exc)

    if _settler is None:
        _settler = concurrent.futures.ThreadPoolExecutor(1, "tray-futures")
    if not rt.table.when_done(ref._id, lambda: _settler.submit(settle)):
        _settler.submit(settle)
    return fut


def asyncio_future(ref: ObjectRef) -> asyncio.Future:
    import asyncio  # not at module level: most programs never need it, and it is slow to import

    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    rt, entry = _entry(ref, blocking=False)

    keep = [ref]

    def settle() -> None:
        keep.clear()  # until now the future held the ref, so a temporary ref's value stays
        if fut.done():
            return
        try:
            fut.set_result(value_of(rt, entry, ref._id))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting code
            fut.set_exception(exc)

    ready = functools.partial(wake_asyncio, loop, settle)
    if rt.table.when_done(ref._id, ready):
        fut.add_done_callback(lambda f: f.cancelled() and rt.table.forget_waiter(ref._id, ready))
    else:
        settle()
    return fut
