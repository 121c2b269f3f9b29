"""The API for library authors: what Tune, Serve, Data, Train, RLlib, the dashboard and the
debugger use besides tray's public API (``trio.lowlevel``'s role for trio).

A library built on tray imports ``tray``, ``tray.util``, ``tray.exceptions`` and this module,
never ``tray.core._*``, ``tray.cluster``, ``tray.store`` or ``tray.transport`` (a test reads
every import to hold that line). Every name below has a one-line contract; all are
*provisional*: stable within a minor release, and changed only with a note in the changelog.

Threads: tray's runtime is a trio loop in a background thread of each process. Functions
marked *sync* are called from any other thread (the user's, an actor's) and wait; those
marked *async* are awaited inside that loop (from code given to :func:`run_in_loop`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import attrs

from ._meta import fixup_module_metadata

# runtime_envs: the runtime_env machinery, for libraries that start processes in one themselves
# (the job supervisor): validate, merge, pack, package_uri, upload, prepare -> Prepared, apply_env;
# packages live in the KV namespace PKG_NAMESPACE, at most MAX_PACKAGE_BYTES each.
from .cluster import _runtime_env as runtime_envs
from .cluster._labels import check_label_selector  # Ray's label_selector syntax (placement groups' bundles)
from .cluster._logs import last_lines  # the last N lines of a read_log window (its partly cut first line left out)
from .cluster._placement import check_bundles, check_strategy
from .core import _gather, _process
from .core._objects import ObjectRef, dumps, loads
from .core._remote import _new_refs

__all__ = [
    "RuntimeInfo",
    "ask_control",
    "call_soon",
    "check_bundles",
    "check_label_selector",
    "check_strategy",
    "cluster_state",
    "control_call",
    "control_call_at",
    "current_placement_group_id",
    "dumps",
    "find_cluster",
    "fixup_module_metadata",
    "follow_next_task",
    "in_loop",
    "kv_del",
    "kv_exists",
    "kv_get",
    "kv_keys",
    "kv_put",
    "last_lines",
    "loads",
    "log_files",
    "memory_state",
    "new_object_refs",
    "node_state",
    "paused_in_debugger",
    "read_log",
    "ref_of",
    "require",
    "run_in_loop",
    "runtime_envs",
    "runtime_info",
    "setting",
]


@attrs.frozen
class RuntimeInfo:
    """Who this process is in the cluster (a snapshot; ids are hex strings)."""

    job_id: str
    namespace: str
    node_id: str
    worker_id: str | None  # None in a driver
    address: str  # where this process's node is reached (``tray.init(address=...)`` accepts it)
    token: str  # the cluster token every tray port checks
    session_dir: str | None  # the hosted node's session directory (a driver that started its node)

    @property
    def is_driver(self) -> bool:
        return self.worker_id is None


def require(module: str, extra: str) -> Any:
    """Import the optional dependency ``module`` for a library, or raise ImportError saying which
    extra installs it (``pip install "tray[extra]"``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is needed here and is not installed: pip install \"tray[{extra}]\" "
                          f"({exc})") from exc


def runtime_info() -> RuntimeInfo:
    """Sync: the current process's runtime, started with ``tray.init()`` defaults if none runs (as Ray)."""
    rt = _process.runtime_for_call()
    # a running runtime's actor system listens, so its address is set
    address = cast(str, rt.node_address or rt.system.address)
    return RuntimeInfo(job_id=rt.job_id, namespace=rt.namespace, node_id=rt.node_id, worker_id=rt.worker_id,
                       address=address, token=rt.token, session_dir=rt.session_dir)


def run_in_loop(afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Sync: run ``await afn(*args)`` in tray's loop and return (or raise) its outcome."""
    return _process.runtime_for_call().call(afn, *args)


def call_soon(fn: Callable[..., Any], *args: Any) -> None:
    """Sync: queue ``fn(*args)`` to run in tray's loop, in the order queued; returns at once."""
    _process.runtime_for_call().soon(fn, *args)


def in_loop() -> bool:
    """Is the calling thread tray's loop thread (where only the *async* functions may be used)?"""
    rt = _process.current()
    return rt is not None and rt.in_loop()


async def ask_control(method: str, *args: Any) -> Any:
    """Async: ask the head's control store ``method(*args)`` (its actor protocol) and return the reply."""
    rt = _process.runtime_for_call()
    return await getattr(rt.control, method).ask(*args)


def control_call(method: str, *args: Any) -> Any:
    """Sync: :func:`ask_control` from outside the loop."""
    return _process.ask_control(method, *args)


def kv_put(key: str, value: bytes, *, namespace: str = "", overwrite: bool = True) -> bool:
    """Sync: store ``value`` under ``key`` in the cluster's KV table (unless it exists and not
    ``overwrite``, which leaves it as it was); True if the key already existed, as Ray's
    ``_internal_kv_put`` answers."""
    return control_call("kv_put", namespace, key, value, overwrite)


def kv_get(key: str, *, namespace: str = "") -> bytes | None:
    """Sync: the value under ``key``, or None."""
    return control_call("kv_get", namespace, key)


def kv_exists(key: str, *, namespace: str = "") -> bool:
    """Sync: whether ``key`` holds a value."""
    return control_call("kv_exists", namespace, key)


def kv_del(key: str, *, namespace: str = "", by_prefix: bool = False) -> int:
    """Sync: delete ``key`` (or every key starting with it); the number deleted."""
    return control_call("kv_del", namespace, key, by_prefix)


def kv_keys(prefix: str = "", *, namespace: str = "") -> list[str]:
    """Sync: the keys starting with ``prefix``."""
    return control_call("kv_keys", namespace, prefix)


def new_object_refs(n: int) -> list[ObjectRef]:
    """Sync: ``n`` refs owned by this process whose values are not made yet (``ref.hex()`` names each)."""
    return _new_refs(_process.runtime_for_call(), n)[1]


def ref_of(afn: Callable[..., Awaitable[Any]], *args: Any) -> ObjectRef:
    """Sync: a new ref whose value is what ``await afn(*args)``, started now in tray's loop,
    returns (or whose ``get`` raises what it raises); for values that arrive as events do."""
    rt = _process.runtime_for_call()
    (oid,), (ref,) = _new_refs(rt, 1)

    async def settle() -> None:
        try:
            value = await afn(*args)
        except Exception as exc:  # noqa: BLE001 - the ref carries it to whoever gets it
            rt.table.resolve(oid, None, error=exc)
        else:
            rt.table.resolve(oid, dumps(value))

    def start() -> None:
        try:
            rt.owner.nursery.start_soon(settle)
        except RuntimeError:  # the runtime is shutting down: nobody will get the ref
            pass

    rt.soon(start)
    return ref


def current_placement_group_id() -> str | None:
    """The placement group (hex id) the current task or actor runs in, or None (a driver, or
    outside any group); never starts a runtime."""
    rt = _process.current()
    return getattr(rt, "current_placement_group_id", None) if rt is not None else None


def cluster_state(kind: str, *, address: str | None = None) -> list[dict[str, Any]]:
    """Sync: every row of ``kind`` ("nodes", "actors", "tasks", "objects", "workers", "jobs",
    "placement_groups") over the whole cluster, with Ray's state-API keys; each process asked
    is bounded by a timeout and left out if it does not answer. ``address``: another cluster's
    head (default: this driver's cluster, or outside a driver the newest one on this machine)."""
    return _gather.rows(kind, address)


def memory_state(address: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """Sync: ``(object rows, {node_id: store usage}, this driver's node id, else the head's)``."""
    return _gather.objects_and_stores(address)


NODE_ASK_TIMEOUT_S = 5.0


async def node_state(system: Any) -> dict[str, Any]:
    """Async, in a node's own process (a child of its supervision tree, as the per-node metrics
    exporter, given its ``self.system``): ``node_id``; ``resources_total`` and
    ``resources_available``; ``pids``: the node process's and its worker processes';
    ``store``: its object store's usage (``budget``, ``used``, ``spilled_bytes``, ``objects``,
    ...); ``received``: ``{(actor name, method): count}``, the messages each named actor of the
    node process (its scheduler, store, control store on the head, ...) received from other
    processes since it started (RPC rates); ``control``: the control store (its KV methods are
    :func:`control_call_at`'s), or None before the node joined its cluster. A part that does
    not answer within a timeout is left empty."""
    import os

    import trio

    from .cluster._control import CONTROL_NAME
    from .cluster._scheduler import SCHEDULER_NAME
    from .store import STORE_NAME

    out: dict[str, Any] = {"node_id": system.uid, "resources_total": {}, "resources_available": {},
                           "pids": [os.getpid()], "store": {}, "received": {}, "control": system.lookup(CONTROL_NAME)}
    scheduler, store = system.lookup(SCHEDULER_NAME), system.lookup(STORE_NAME)

    async def from_scheduler() -> None:
        if scheduler is None:
            return
        out["resources_total"], out["resources_available"] = await scheduler.resources.ask()
        out["pids"] += [p["pid"] for p in await scheduler.processes.ask() if p.get("pid")]
        if out["control"] is None:
            with trio.move_on_after(0.1):  # not joined yet: no control store to name
                out["control"] = (await scheduler.node_info.ask())["control"]

    async def from_store() -> None:
        if store is not None:
            out["store"] = await store.stats.ask()

    with trio.move_on_after(NODE_ASK_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(from_scheduler)
            nursery.start_soon(from_store)
    for ref in system.actors():
        cell = system.cell(ref.actor_id)
        if ref.name is not None and cell is not None:
            for method, n in list(cell.received.items()):
                out["received"][(ref.name, method)] = n
    return out


LOG_ASK_TIMEOUT_S = 10.0


def log_files(node_id: str | None = None) -> list[dict[str, Any]]:
    """Sync: the worker log files of every alive node (or of ``node_id``): rows of ``node_id,
    name, worker_id, pid, stream ("out" | "err"), size, mtime``; a node that does not answer
    within a timeout is left out."""
    import trio

    async def gather() -> list[dict[str, Any]]:
        view = await ask_control("view")
        found: list[dict[str, Any]] = []

        async def one(scheduler: Any) -> None:
            with trio.move_on_after(LOG_ASK_TIMEOUT_S):
                try:
                    found.extend(await scheduler.log_files.ask())
                except Exception:  # noqa: BLE001 - a node that died meanwhile has no files to show
                    pass

        async with trio.open_nursery() as nursery:
            for nid, (scheduler, *_rest) in view.items():
                if node_id is None or nid == node_id:
                    nursery.start_soon(one, scheduler)
        return sorted(found, key=lambda r: (r["node_id"], r["mtime"], r["name"]))

    return run_in_loop(gather)


def read_log(node_id: str, name: str, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int, int]:
    """Sync: ``(data, end_offset, size)``: up to ``max_bytes`` of node ``node_id``'s log file
    ``name`` from ``offset`` (negative: that far before its end), read through that node, so
    from any machine. ValueError: no such node or file."""
    import trio

    async def read() -> tuple[bytes, int, int]:
        view = await ask_control("view")
        if node_id not in view:
            raise ValueError(f"no alive node {node_id!r}")
        with trio.fail_after(LOG_ASK_TIMEOUT_S):
            return await view[node_id][0].read_log.ask(name, offset, max_bytes)

    return run_in_loop(read)


def setting(field: str) -> Any:
    """One of tray's settings (a field of ``tray/_config.py``'s table, e.g. ``"post_mortem"``) as
    the environment says now, else its default; ValueError names a bad value or an unknown field."""
    from . import _config

    return _config.get(field)


def find_cluster(address: str | None = None) -> tuple[str, str]:
    """Sync, never starts a runtime: ``(address, token)`` of the cluster ``tray list`` would ask:
    ``address``, else this driver's, else the newest head started on this machine, else the newest
    local ``tray.init()`` program. ConnectionError (saying how to give one) when none is found."""
    rt = _process.current()
    if address is None and rt is not None:
        return str(rt.node_address or rt.system.address), rt.token
    return _gather.target(address)


def control_call_at(address: str | None, method: str, *args: Any) -> Any:
    """Sync, from any process (a command line tool too, which starts no runtime): ask the control
    store of the cluster :func:`find_cluster` finds for ``address`` ``method(*args)``; the KV
    table's methods are ``kv_put(namespace, key, value, overwrite)``, ``kv_get(namespace, key)``,
    ``kv_keys(namespace, prefix)`` and ``kv_del(namespace, key, by_prefix)``."""
    async def ask(system: Any, control: Any) -> Any:
        return await getattr(control, method).ask(*args)

    return _gather.query(ask, address)


def paused_in_debugger(paused: bool) -> None:
    """The calling thread stops in a debugger (``paused``) or goes on: while stopped, the task it
    runs shows ``PAUSED_AT_BREAKPOINT`` in ``tray list tasks`` (a worker's main thread)."""
    import threading

    from .core import _tasklog

    ident = threading.get_ident()
    if paused:
        _tasklog.paused_threads.add(ident)
    else:
        _tasklog.paused_threads.discard(ident)


def follow_next_task(wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None) -> None:
    """The next task this process submits runs ``wrap(fn)`` (a picklable callable) in place of
    its function ``fn``, once; None forgets a wrap not used yet. The debugger's ``remote``
    command uses it to stop at the start of the task it follows."""
    from .core import _remote

    _remote.follow_next.clear()
    if wrap is not None:
        _remote.follow_next.append(wrap)
