"""The Ray-style functions: init, shutdown, get, put, wait, cancel, kill, get_actor, ..."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ..exceptions import GetTimeoutError, ObjectLostError
from . import _runtime, _watch
from ._objects import PENDING, READY, ObjectRef
from ._remote import ActorHandle

if TYPE_CHECKING:
    import asyncio

_init_lock = threading.Lock()


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    namespace: str | None = None,
    object_store_memory: int | None = None,
    ignore_reinit_error: bool = False,
    log_to_driver: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Start tray in this process (a local node) — or, later, connect to a cluster.

    ``object_store_memory`` is the shared-memory budget of the node's object store in
    bytes (default: 30% of RAM, at most what ``/dev/shm`` holds); objects beyond it spill
    to ``object_spilling_directory`` (default: the session directory). Values larger than
    ``_system_config["max_direct_call_object_size"]`` (100 KiB) go to the store.
    ``_system_config["memory_usage_threshold"]`` (0.95) and ``["memory_monitor_refresh_ms"]``
    (250; 0: off) set the memory monitor, which kills a worker when the node's memory runs low.
    ``_system_config["get_warn_after_s"]`` (30; or ``TRAY_GET_WARN_AFTER_S``): a ``tray.get``
    waiting longer logs once what it waits on.

    Returns a dict describing the session. Options Ray accepts that do not apply here
    (``include_dashboard``, ``logging_level``, ...) are accepted and ignored.
    """
    from ..cluster import node_resources
    from ..cluster._memory import MemoryConfig

    with _init_lock:
        rt = _runtime.current()
        if rt is not None:
            if ignore_reinit_error:
                return _context(rt)
            raise RuntimeError("tray.init() was already called; call tray.shutdown() first, "
                               "or pass ignore_reinit_error=True")
        _watch.configure(kwargs.get("_system_config"))
        address = address or os.environ.get("TRAY_ADDRESS")
        ns = namespace if namespace is not None else uuid.uuid4().hex[:8]
        if address is not None and address != "local":
            given = [k for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("resources", resources),
                                    ("object_store_memory", object_store_memory)) if v is not None]
            if given:
                raise ValueError(f"tray.init(address={address!r}): {', '.join(given)} describe a new node and cannot "
                                 f"be given when connecting to a running cluster; pass them to `tray start` instead")
            rt = _connect(address, ns, log_to_driver)
        else:
            store = _store_options(object_store_memory, kwargs)
            total = node_resources(num_cpus, num_gpus, resources, object_store_memory=store.get("object_store_memory"))
            memory = MemoryConfig.resolve(kwargs.get("_system_config"))
            rt = _runtime.Runtime(node_address=None, token=secrets.token_hex(16),
                                  node_config={"resources": total, "log_to_driver": log_to_driver, "memory": memory,
                                               **store},
                                  namespace=ns, job_id=uuid.uuid4().hex[:8], log_to_driver=log_to_driver)
        _runtime.install(rt)
        try:
            rt.start()
        except BaseException:
            _runtime.install(None)
            raise
        return _context(rt)


def _connect(address: str, namespace: str, log_to_driver: bool) -> _runtime.Runtime:
    """A runtime for a driver of the running cluster at ``address`` ("auto": this machine's)."""
    from ..cluster._session import local_ip_toward, resolve

    node_address, token = resolve(address)
    return _runtime.Runtime(node_address=node_address, token=token, node_config=None, namespace=namespace,
                            job_id=uuid.uuid4().hex[:8], listen=f"tcp://{local_ip_toward(node_address)}:0",
                            log_to_driver=log_to_driver)


def _store_options(object_store_memory: int | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The object store's settings from init's arguments (Ray's names), checked."""
    out: dict[str, Any] = {}
    if object_store_memory is not None:
        if not isinstance(object_store_memory, (int, float)) or object_store_memory <= 0:
            raise ValueError(f"object_store_memory must be a positive number of bytes, got {object_store_memory!r}")
        out["object_store_memory"] = int(object_store_memory)
    spill_dir = kwargs.get("object_spilling_directory")
    config = kwargs.get("_system_config") or {}
    if spill_dir is None and "object_spilling_config" in config:  # Ray's JSON form
        import json

        spilling = config["object_spilling_config"]
        spilling = json.loads(spilling) if isinstance(spilling, str) else spilling
        path = spilling.get("params", {}).get("directory_path")
        spill_dir = path[0] if isinstance(path, list) else path
    if spill_dir is not None:
        out["spill_dir"] = os.path.abspath(os.path.expanduser(str(spill_dir)))
    if "max_direct_call_object_size" in config:
        limit = config["max_direct_call_object_size"]
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_direct_call_object_size must be a number of bytes >= 0, got {limit!r}")
        out["inline_limit"] = limit
    return out


def _context(rt: _runtime.Runtime) -> dict[str, Any]:
    return {"address": rt.node_address or rt.system.address, "namespace": rt.namespace, "job_id": rt.job_id,
            "node_id": rt.node_id}


def shutdown() -> None:
    """Stop tray: every worker process and actor of this driver's node goes away."""
    with _init_lock:
        rt = _runtime.current()
        if rt is None:
            return
        _runtime.install(None)
        rt.stop()


atexit.register(shutdown)


def is_initialized() -> bool:
    return _runtime.current() is not None


def _runtime_for_call() -> _runtime.Runtime:
    """The running runtime, started on first use as Ray does."""
    rt = _runtime.current()
    if rt is None:
        init()
        rt = _runtime.current()
        assert rt is not None
    return rt


# ---------------------------------------------------------------------- objects


def put(value: Any) -> ObjectRef:
    """Store ``value`` (serialized now: later changes to it are not seen) and return its ref."""
    if isinstance(value, ObjectRef):
        raise TypeError("tray.put() of an ObjectRef is not allowed; pass the ref itself instead")
    rt = _runtime_for_call()
    table = rt.table
    table.collect()
    oid = table.new_id()
    blob = table.encode(value, oid)
    table.add_owned(oid)
    ref = ObjectRef(oid, None, table)
    table.resolve(oid, blob)
    return ref


def _check_refs(refs: Any, what: str) -> list[ObjectRef]:
    if not isinstance(refs, (list, tuple)):
        raise TypeError(f"{what} expects an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}")
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"{what} expects ObjectRefs, got {type(r).__name__}: {r!r}")
    return list(refs)


def get(object_refs: ObjectRef | Sequence[ObjectRef], *, timeout: float | None = None) -> Any:
    """The value(s) of ``object_refs``, waiting for them; raises a task's error as its own.

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
            watch.finish(_runtime.current())  # type: ignore[arg-type]


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    return time.monotonic() + timeout


def _entry(ref: ObjectRef, blocking: bool = True) -> Any:
    """``(runtime, entry)`` of ``ref`` in this process; starts fetching a borrowed value."""
    rt = _runtime.current()
    if rt is None or ref._table is not rt.table:
        raise RuntimeError(f"{ref!r} belongs to a tray session that was shut down")
    if blocking and rt.in_loop():
        raise RuntimeError("tray.get() would block the runtime's event loop; use `await ref` instead")
    entry = rt.table.entries.get(ref._id)
    if entry is None:
        raise RuntimeError(f"{ref!r} is unknown to this process")
    if entry.state == PENDING and entry.owner is not None:
        rt.soon(rt.owner.ensure_fetch, ref._id, entry.owner)
    return rt, entry


def _get_one(ref: ObjectRef, deadline: float | None, watch: _watch.Watch | None) -> Any:
    rt, entry = _entry(ref)
    if entry.state == PENDING:
        done = threading.Lock()  # held until the value is ready: the lightest way to wake a thread
        done.acquire()
        if rt.table.when_done(ref._id, done.release):
            with _blocked(rt):
                ready = (watch or _watch.Watch([ref])).wait(rt, done, deadline)
            if not ready:
                rt.table.forget_waiter(ref._id, done.release)
                raise GetTimeoutError(f"tray.get() timed out waiting for {ref!r}")
    return _value(rt, entry, ref._id)


@contextlib.contextmanager
def _blocked(rt: _runtime.Runtime) -> Iterator[None]:
    """A task that waits lends its CPUs to the node meanwhile (so nested tasks cannot deadlock)."""
    if rt.current_task_id is None or rt.worker_id is None:
        yield
        return
    rt.soon(rt.scheduler.worker_blocked.try_tell, rt.worker_id)
    try:
        yield
    finally:
        rt.soon(rt.scheduler.worker_unblocked.try_tell, rt.worker_id)


def _value(rt: _runtime.Runtime, entry: Any, oid: str) -> Any:
    if entry.state == READY:
        return _decode(rt, oid, entry.owner, entry.blob)
    err = entry.error
    raise err.with_traceback(None)


def _decode(rt: _runtime.Runtime, oid: str, owner: Any, blob: Any) -> Any:
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


def wait(
    object_refs: Sequence[ObjectRef],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """Wait until ``num_returns`` of the refs are ready (or ``timeout``): ``(ready, not_ready)``.

    Both lists keep the order of ``object_refs``.
    """
    if not isinstance(object_refs, (list, tuple)):
        raise TypeError(f"tray.wait() expects a list of ObjectRefs, got {type(object_refs).__name__}")
    refs = list(object_refs)
    if not isinstance(num_returns, int) or not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be an int between 0 and {len(refs)}, got {num_returns!r}")
    deadline = _deadline(timeout)
    if not refs:
        return [], []
    rt = _runtime.current()
    table = rt.table if rt is not None else None
    entries = table.entries if table is not None else {}
    seen = set()
    for r in refs:  # one pass: check each, and start fetching borrowed values
        if type(r) is not ObjectRef:
            _check_refs(refs, "tray.wait()")  # raises, naming the culprit
        seen.add(r._id)
        entry = entries.get(r._id)
        if entry is None or r._table is not table or (entry.state == PENDING and entry.owner is not None):
            _entry(r)
    if len(seen) != len(refs):
        raise ValueError("tray.wait() got the same ObjectRef more than once")
    assert rt is not None and table is not None
    # One wake-up for any object that resolves, not one registration per ref: a loop of
    # wait(num_returns=1) over a long list stays linear in the list.
    wake = threading.Event()
    table.watchers.append(wake.set)
    try:
        while True:
            wake.clear()
            ready = _ready_indices(refs, table.entries, num_returns)
            if len(ready) >= num_returns:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            with _blocked(rt):
                wake.wait(left)
    finally:
        table.watchers.remove(wake.set)
    chosen = set(ready)
    return [refs[i] for i in ready], [r for i, r in enumerate(refs) if i not in chosen]


def _ready_indices(refs: list[ObjectRef], entries: dict[str, Any], wanted: int) -> list[int]:
    """Positions of the first ``wanted`` refs that are ready (or failed), in order."""
    ready: list[int] = []
    if wanted == 0:
        return ready
    for i, r in enumerate(refs):
        entry = entries.get(r._id)
        if entry is not None and entry.state != PENDING:
            ready.append(i)
            if len(ready) == wanted:
                break
    return ready


async def _await_ref(ref: ObjectRef) -> Any:
    """``await ref`` from trio or asyncio code (in any thread but the runtime's)."""
    import sniffio

    flavor = sniffio.current_async_library()
    if flavor == "asyncio":
        return await _asyncio_future(ref)
    import trio

    rt, entry = _entry(ref, blocking=False)
    if entry.state == PENDING:
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake() -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:  # the awaiting trio run is over: nobody waits
                pass

        if rt.table.when_done(ref._id, wake):
            try:
                await done.wait()
            finally:  # cancelled: stop waiting for the value
                rt.table.forget_waiter(ref._id, wake)
    return _value(rt, entry, ref._id)


def _asyncio_future(ref: ObjectRef) -> asyncio.Future:
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
            fut.set_result(_value(rt, entry, ref._id))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting code
            fut.set_exception(exc)

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody awaits this any more
            pass

    if rt.table.when_done(ref._id, wake):
        fut.add_done_callback(lambda f: f.cancelled() and rt.table.forget_waiter(ref._id, wake))
    else:
        settle()
    return fut


# ----------------------------------------------------------------------- control


def cancel(object_ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task that makes ``object_ref``: KeyboardInterrupt in it, or its worker killed (force)."""
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"tray.cancel() expects an ObjectRef, got {type(object_ref).__name__}")
    rt = _runtime_for_call()
    rt.soon(rt.owner.cancel, object_ref._id, force, recursive)


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """End ``actor`` at once; its pending and later calls raise ActorDiedError."""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"tray.kill() expects an actor handle, got {type(actor).__name__}")
    rt = _runtime_for_call()
    rt.soon(rt.owner.kill_actor, actor._actor_id, no_restart)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the live actor named ``name`` (in ``namespace``, default: this job's)."""
    rt = _runtime_for_call()
    ns = namespace if namespace is not None else rt.namespace

    async def look() -> Any:
        return await rt.control.named_actor.ask(name, ns)

    found = rt.call(look)
    if found is None:
        raise ValueError(f"Failed to look up actor with name {name!r} in namespace {ns!r}: no live actor has it")
    actor_id, class_name, methods = found
    return ActorHandle(actor_id, class_name, methods, rt.job_id)


# ---------------------------------------------------------------------- the node


def _ask_control(method: str, *args: Any) -> Any:
    rt = _runtime_for_call()

    async def ask() -> Any:
        return await getattr(rt.control, method).ask(*args)

    return rt.call(ask)


def _resources() -> tuple[dict[str, float], dict[str, float]]:
    """Totals and free amounts over the alive nodes, asked of each node's scheduler (the
    control store's view may be a report behind)."""
    rt = _runtime_for_call()

    async def ask() -> list[tuple[dict[str, float], dict[str, float]]]:
        import trio

        from ..exceptions import RayError

        rt.owner.release_idle()  # before the schedulers are asked (in order, on the same connections)
        view = await rt.control.view.ask()
        answers: list[tuple[dict[str, float], dict[str, float]]] = []

        async def one(scheduler: Any) -> None:
            try:
                answers.append(await scheduler.resources.ask())
            except RayError:  # died meanwhile: its resources are gone from the cluster
                pass

        async with trio.open_nursery() as nursery:
            for scheduler, *_rest in view.values():
                nursery.start_soon(one, scheduler)
        return answers

    total: dict[str, float] = {}
    free: dict[str, float] = {}
    for node_total, node_free in rt.call(ask):
        for into, amounts in ((total, node_total), (free, node_free)):
            for k, v in amounts.items():
                into[k] = into.get(k, 0) + v
    return total, free


def cluster_resources() -> dict[str, float]:
    """Every resource of the cluster (all alive nodes) and its total amount."""
    return _resources()[0]


def available_resources() -> dict[str, float]:
    """Every resource of the cluster that is free now, and how much."""
    return {k: v for k, v in _resources()[1].items() if v > 0}


def nodes() -> list[dict[str, Any]]:
    """One dict per node the cluster has known, alive or dead (Ray's keys: NodeID, Alive,
    NodeManagerAddress, Resources, ...)."""
    return _ask_control("nodes_table")


def timeline(filename: str | None = None) -> list[dict[str, Any]]:
    """The recent tasks and actor calls of every worker of the cluster, as Chrome trace
    events (load the file in chrome://tracing or https://ui.perfetto.dev): one ``"X"`` event
    per span, ``pid`` a node, ``tid`` a worker's pid. Written to ``filename`` as JSON if given."""
    from ._timeline import chrome_trace, collect, write

    rt = _runtime_for_call()
    events = chrome_trace(rt.call(collect, rt.control))
    if filename is not None:
        write(events, filename)
    return events


class RuntimeContext:
    """What this process is in tray's terms (``tray.get_runtime_context()``)."""

    def __init__(self, rt: _runtime.Runtime) -> None:
        self._rt = rt

    def get_job_id(self) -> str:
        return self._rt.job_id

    def get_node_id(self) -> str:
        return self._rt.node_id

    def get_worker_id(self) -> str:
        return self._rt.worker_id or self._rt.system.uid

    def get_task_id(self) -> str | None:
        return self._rt.current_task_id

    def get_actor_id(self) -> str | None:
        return self._rt.current_actor_id

    @property
    def namespace(self) -> str:
        return self._rt.namespace

    @property
    def job_id(self) -> str:
        return self._rt.job_id

    @property
    def node_id(self) -> str:
        return self._rt.node_id


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(_runtime_for_call())
