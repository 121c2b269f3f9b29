"""The per-process runtime: a trio loop in a background thread hosting this process's actors.

The user's code (the driver's main thread, or a worker's) stays synchronous and calls
into the loop: ``call`` waits for a result, ``soon`` queues work without waiting, which
is what lets ``f.remote()`` return at once. In the driver the loop also hosts the local
node (scheduler and worker pool) unless the driver joined a running cluster.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import _config
from ..actors import ActorRef, ActorSystem
from ..actors._crossing import Signal, wake
from ..actors._crossing import call as call_in
from ..cluster._session import new_session_dir, unreachable, write_session
from ..exceptions import RayError
from ..store import DEFAULT_INLINE_LIMIT, STORE_NAME, StoreClient
from ._objects import ObjectTable, process_prefix
from ._owner import Owner, OwnerActor
from ._process import current, current_table, install  # noqa: F401 - where tests and tools have found them

log = logging.getLogger("tray.core")

COLLECT_S = 0.1
JOIN_TIMEOUT_S = 30.0


class Runtime:
    """One process's link to the cluster: its actor system, its objects, its submissions."""

    def __init__(
        self,
        *,
        node_address: str | None,
        token: str,
        node_config: dict[str, Any] | None,
        namespace: str,
        job_id: str,
        worker_id: str | None = None,
        listen: str | None = None,
        log_to_driver: bool = True,
        settings: _config.Settings | None = None,
    ) -> None:
        self.node_address = node_address  # None: host the node here
        self.settings = settings if settings is not None else _config.resolve()  # read once per process
        self.listen = listen  # where others reach this process's actors (a worker's socket)
        self.token = token
        self.node_config = node_config
        self.namespace = namespace
        self.job_id = job_id
        self.worker_id = worker_id  # None in a driver
        self.table = ObjectTable(process_prefix(), lambda: self.owner_ref)
        self.system: ActorSystem = None  # type: ignore[assignment]
        self.owner: Owner = None  # type: ignore[assignment]
        self.owner_ref: ActorRef | None = None
        self.scheduler: ActorRef = None  # type: ignore[assignment]
        self.control: ActorRef = None  # type: ignore[assignment]
        self.log_to_driver = log_to_driver
        self.node: Any = None  # the LocalNode this process hosts (a driver without address)
        self.trio_token: trio.lowlevel.TrioToken = None  # type: ignore[assignment]
        self._thread: threading.Thread | None = None
        self._loop_ident: int | None = None  # the loop thread's, while it runs (idents are reused after)
        self._ready = Signal()
        self._announced = False  # the starting thread has been told (ready, or why not)
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self.session_dir: str | None = None
        self.closed = False
        self._collect_armed = False
        self._handed = 0  # callables other threads gave the loop (``soon``) that have not run yet
        self._handed_lock = threading.Lock()
        self.node_id = ""
        self.current_task_id: str | None = None  # in a worker: the task its main thread runs
        self.current_actor_id: str | None = None  # in a worker: the actor it hosts
        self.current_actor_class: tuple[str, dict[str, Any]] = ("", {})  # its class name and method table
        self.assigned_resources: dict[str, float] | None = None  # in a worker: its lease's, in Ray's names
        self.current_placement_group_id: str | None = None  # in a worker: the group its lease is in
        self.capture_child_tasks = False  # in a worker: its lease's group takes its children too
        self.gpu_ids: list[int | str] = []  # in a worker: its lease's GPUs (get_gpu_ids)

    # ------------------------------------------------------------------ start

    def start(self, setup: Callable[[Runtime], Awaitable[None]] | None = None) -> None:
        """Start the loop thread and wait until the node is reachable (or raise why not)."""
        self._setup = setup
        self._thread = threading.Thread(target=self._thread_main, name="tray-runtime", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            err = self._error
            while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
                err = err.exceptions[0]  # the one reason, not the nurseries it crossed
            raise err

    def _thread_main(self) -> None:
        self._loop_ident = threading.get_ident()
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            if not self._announced:
                self._error = exc
                self._announce()
            else:
                log.exception("tray runtime loop died")
        finally:
            self._loop_ident = None

    def _announce(self) -> None:
        self._announced = True
        self._ready.set()

    async def _main(self) -> None:
        self.trio_token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        address = self.listen
        if self.node_address is None:
            self.session_dir = new_session_dir()
            address = f"unix://{self.session_dir}/node.sock"
        async with ActorSystem(address=address, token=self.token) as system:
            self.system = system
            async with trio.open_nursery() as nursery:
                self.owner = Owner(self, nursery)
                self.owner_ref = await system.spawn(OwnerActor, self.owner, name="tray.owner", max_concurrency=1 << 20)
                if self.node_address is None:
                    info = await self._host_node(system)
                else:
                    info = await self._join_node(system)
                self.node_id = info["node_id"]
                self.control = info["control"]
                # a hosted node's store is registered in this system; a joined node's comes in info
                self._attach_table(StoreClient(system.lookup(STORE_NAME) if self.node is not None else info["store"],  # type: ignore[arg-type]
                                               info["store_prefix"], info["inline_limit"], system.uid, self.call,
                                               self.soon_unless_closed, info["address"]))
                if self.worker_id is None:
                    await self.control.register_job.ask(self.job_id, self._job_info(), self.owner_ref)
                if self._setup is not None:
                    await self._setup(self)
                if self.session_dir is not None:
                    self._write_session_file(address)  # type: ignore[arg-type]
                self._announce()
                await self._stop.wait()
                nursery.cancel_scope.cancel()
            if self.node is not None:
                await self.node.stop()
        if self.node is not None and self.table.store is not None:
            # The store sweeps its files when it stops; if its stop was cut short (a slow
            # shutdown), its actor ran on until the system closed and could still pool a
            # freed file: only now can nothing of this process add one.
            self.table.store.segments.sweep()
        if self.session_dir is not None:
            shutil.rmtree(self.session_dir, ignore_errors=True)

    async def _host_node(self, system: ActorSystem) -> dict[str, Any]:
        """Start a one-machine cluster in this process: its head node, with the control store."""
        from ..cluster import LocalNode, StoreConfig  # only a process that hosts the node needs them

        cfg = self.node_config or {}
        spill_dir = cfg.get("spill_dir")
        store = StoreConfig(f"tray-{os.urandom(4).hex()}-", spill_dir or f"{self.session_dir}/spill",
                            cfg.get("object_store_memory"), own_spill_dir=spill_dir is None,
                            inline_limit=cfg.get("inline_limit", DEFAULT_INLINE_LIMIT))
        self.node = LocalNode(system, cfg["resources"], self._worker_env(), store, cfg.get("log_to_driver", True),
                              memory=cfg.get("memory"), dashboard=cfg.get("dashboard"), metrics=cfg.get("metrics"),
                              labels=cfg.get("labels"))
        self.scheduler = await self.node.start()
        return await self.scheduler.node_info.ask()

    async def _join_node(self, system: ActorSystem) -> dict[str, Any]:
        """Attach to a running node (this process is its worker, or a driver on its machine)."""
        from ..exceptions import RayError

        try:
            sched = await system.lookup_remote(self.node_address, "tray.scheduler")  # type: ignore[arg-type]
            manager = await system.lookup_remote(self.node_address, STORE_NAME)  # type: ignore[arg-type]
        except RayError as exc:
            raise ConnectionError(unreachable(self.node_address, exc)) from None
        if sched is None or manager is None:
            raise ConnectionError(f"no tray node answers at {self.node_address}")
        self.scheduler = sched
        with trio.move_on_after(JOIN_TIMEOUT_S):
            return {**await sched.node_info.ask(), "store": manager}
        raise ConnectionError(f"the tray node at {self.node_address} has not joined its cluster's head "
                              f"within {JOIN_TIMEOUT_S:.0f} s (is the head node up?)")

    def _job_info(self) -> dict[str, Any]:
        """What workers need to run this driver's code: its namespace and import path."""
        return {"namespace": self.namespace, "sys_path": [p for p in sys.path if p], "cwd": os.getcwd(),
                "pid": os.getpid(), "entrypoint": " ".join(sys.argv), "log_to_driver": self.log_to_driver,
                "node_id": self.node_id}

    def _write_session_file(self, address: str) -> None:
        """How other processes of this user (``tray memory``) reach this node: the session
        directory is private to the user (mode 0700), so the token may sit in it."""
        write_session(self.session_dir, {"kind": "driver", "address": address, "token": self.token,  # type: ignore[arg-type]
                                         "pid": os.getpid(), "namespace": self.namespace, "node_id": self.node_id})

    def _attach_table(self, store: StoreClient) -> None:
        """Connect the object table to the world: the node's store, and the owners of the
        objects this process borrows (they keep a value while any borrower holds a ref)."""
        table = self.table
        table.store, table.uid = store, self.system.uid
        table.on_free = self._free
        table.on_release = self._collect_soon
        table.on_borrow = _Batcher(self, "borrow").add
        table.on_unborrow = _Batcher(self, "unborrow").add

    def _free(self, blobs: list[Any]) -> None:
        """Any thread: stored values of ours that nothing references; their nodes free them
        (bookkeeping that does not matter once this runtime is shut down)."""
        try:
            self.table.store.free(blobs)  # type: ignore[union-attr]
            self.soon(self.owner.forget_lineage, [b.key for b in blobs])
        except (RuntimeError, trio.RunFinishedError):
            pass

    def _collect_soon(self) -> None:
        """Any thread: refs were dropped; release them within COLLECT_S even if this process
        is otherwise idle (one timer at a time, none at all while nothing is dropped)."""
        if not self._collect_armed:
            self._collect_armed = True
            self.soon_unless_closed(self._arm_collect)

    def _arm_collect(self) -> None:
        try:
            self.owner.nursery.start_soon(self._collect_later)
        except RuntimeError:  # the loop is closing
            pass

    async def _collect_later(self) -> None:
        await trio.sleep(COLLECT_S)
        self._collect_armed = False
        self.table.collect()

    def _worker_env(self) -> dict[str, str]:
        """Workers inherit the driver's environment and import path (to find its modules)."""
        env = dict(os.environ)
        env.update(_config.to_env(cluster_token=self.token, namespace=self.namespace, job_id=self.job_id))
        env.update((self.node_config or {}).get("worker_env", {}))  # settings of init's _system_config
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        return env

    # ------------------------------------------------------------ calling in

    def call(self, afn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``afn(*args)`` in the loop and wait for its result (from any other thread)."""
        if self.closed:
            raise RuntimeError("tray has been shut down; call tray.init() again")
        if threading.get_ident() == self._loop_ident:
            raise RuntimeError("blocking tray call from inside the runtime loop; use `await` instead")
        if self.owner is not None:  # (what it asks may see a call this thread held back)
            self.owner.calls.lanes.flush()
        return call_in(self.trio_token, afn, *args)

    def soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` to run in the loop; returns at once."""
        if self.closed:
            raise RuntimeError("tray has been shut down; call tray.init() again")
        with self._handed_lock:
            self._handed += 1
        try:
            handed = wake(self.trio_token, self._run_handed, fn, args)
        except BaseException:
            self._ran_handed()
            raise
        if not handed:  # the loop ended under us: as if shut down
            self._ran_handed()
            raise RuntimeError("tray has been shut down; call tray.init() again")

    def _run_handed(self, fn: Callable[..., Any], args: tuple) -> None:
        try:
            fn(*args)
        finally:
            self._ran_handed()

    def _ran_handed(self) -> None:
        with self._handed_lock:
            self._handed -= 1

    def quiet(self) -> bool:
        """Has the loop run everything handed to it with ``soon``? Only then may a thread
        send a message itself (``MethodRef.tell_from_thread``) without overtaking what it
        handed the loop to send before (a borrow note must reach an owner before the reply
        that lets it free the object)."""
        return self._handed == 0

    def soon_unless_closed(self, fn: Callable[..., Any], *args: Any) -> None:
        """``soon``, for bookkeeping that does not matter once the runtime is shut down (the
        node's sweep frees what is left, and no owner waits for the note)."""
        try:
            self.soon(fn, *args)
        except RuntimeError:
            pass

    def in_loop(self) -> bool:
        return threading.get_ident() == self._loop_ident

    def stop(self) -> None:
        """Stop the loop (and the hosted node with its workers); wait for it."""
        if self.closed:
            return
        self.closed = True
        wake(self.trio_token, self._stop.set)  # type: ignore[union-attr]
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)


class _Batcher:
    """Notes to owners (``borrow``/``unborrow``), gathered from any thread and sent from the
    loop as one message per owner: getting a list of 10,000 refs sends one, not 10,000."""

    def __init__(self, rt: Runtime, method: str) -> None:
        self.rt, self.method = rt, method
        self.pending: deque[tuple[str, ActorRef]] = deque()
        self.scheduled = False

    def add(self, oid: str, owner: ActorRef) -> None:
        self.pending.append((oid, owner))
        if not self.scheduled:
            self.scheduled = True
            self.rt.soon_unless_closed(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        by_owner: dict[ActorRef, list[str]] = {}
        pending = self.pending
        while pending:
            oid, owner = pending.popleft()
            by_owner.setdefault(owner, []).append(oid)
        me = (self.rt.system.uid, self.rt.owner_ref) if self.method == "borrow" else (self.rt.system.uid,)
        for owner, oids in by_owner.items():  # a borrow names our owner actor too: the owner watches it
            try:
                getattr(owner, self.method).tell_nowait(oids, *me)
            except RayError:  # the owner is gone: nothing to keep alive there
                pass

