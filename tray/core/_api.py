"""The Ray-style functions: init, shutdown, get, put, wait, cancel, kill, get_actor, ...

This is the face: nothing inside tray imports it but ``tray/__init__.py`` and
``tray/core/__init__.py``. What it shows lives below it: the process's runtime and its
start (``_process``), values in and out (``_values``).
"""

from __future__ import annotations

import warnings
from typing import Any

from ..actors._crossing import in_asyncio
from . import _context, _process
from ._generators import ObjectRefGenerator
from ._ids import ActorID, JobID, NodeID, PlacementGroupID, TaskID, WorkerID
from ._objects import ObjectRef
from ._process import init, is_initialized, shutdown
from ._remote import ActorHandle
from ._runtime import Runtime
from ._values import get, put, wait

__all__ = [
    "RuntimeContext",
    "available_resources",
    "cancel",
    "cluster_resources",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "nodes",
    "put",
    "shutdown",
    "timeline",
    "wait",
]

# ----------------------------------------------------------------------- control


def cancel(object_ref: ObjectRef | ObjectRefGenerator, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task that makes ``object_ref`` (or a streaming generator), as Ray does: a task
    waiting never runs; a running one gets KeyboardInterrupt, or its worker is killed
    (``force``). An actor call waiting never runs; a running one is an async actor's cancelled
    asyncio task, else it goes on and ``get_runtime_context().is_canceled()`` says so in it;
    ``force`` is refused for actor calls (ValueError), as in Ray."""
    if isinstance(object_ref, ObjectRefGenerator):
        task_id = object_ref._stream.task_id
    elif isinstance(object_ref, ObjectRef):
        task_id = object_ref._id
    else:
        raise TypeError(f"tray.cancel() expects an ObjectRef or ObjectRefGenerator, got {type(object_ref).__name__}")
    rt = _process.runtime_for_call()

    async def an_actor_call() -> bool:  # asked in the loop: after the submission this thread handed it
        return task_id not in rt.owner.live and rt.owner.calls.find_call(task_id) is not None

    if force and rt.call(an_actor_call):
        raise ValueError("force=True is not supported for actor tasks (an actor's state would be lost with its "
                         "process): use tray.kill(actor) to end the actor")
    rt.soon(rt.owner.cancel, task_id, force, recursive)


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """End ``actor`` at once; its pending and later calls raise ActorDiedError."""
    if not isinstance(actor, ActorHandle):  # Ray's ValueError
        raise ValueError(f"tray.kill() only supports actors (for tasks, use tray.cancel()); got {type(actor).__name__}")
    rt = _process.runtime_for_call()
    rt.soon(rt.owner.calls.kill_actor, actor._actor_id, no_restart)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the live actor named ``name`` (in ``namespace``, default: this job's)."""
    if not isinstance(name, str):
        raise TypeError(f"tray.get_actor() takes the actor's name as a str, got {type(name).__name__}")
    if not name:
        raise ValueError("Please supply a non-empty value to get_actor")  # Ray's words
    rt = _process.runtime_for_call()
    ns = namespace if namespace is not None else rt.namespace

    async def look() -> Any:
        return await rt.control.named_actor.ask(name, ns)

    found = _process.call_control(rt, look)
    if found is None:
        raise ValueError(f"Failed to look up actor with name {name!r} in namespace {ns!r}: no live actor has it")
    actor_id, class_name, methods = found
    return ActorHandle(actor_id, class_name, methods, rt.job_id)


# ---------------------------------------------------------------------- the node


def _resources() -> tuple[dict[str, float], dict[str, float]]:
    """Totals and free amounts over the alive nodes, asked of each node's scheduler (the
    control store's view may be a report behind)."""
    rt = _process.runtime_for_call()

    async def ask() -> list[tuple[dict[str, float], dict[str, float]]]:
        import trio

        from ..exceptions import RayError

        rt.owner.leases.release_idle()  # before the schedulers are asked (in order, on the same connections)
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
    NodeManagerAddress, Resources, ...; also Ray's ``alive`` and ``NodeName`` aliases)."""
    return [{**row, "alive": row["Alive"], "NodeName": row["NodeManagerAddress"]}
            for row in _process.ask_control("nodes_table")]


def timeline(filename: str | None = None) -> list[dict[str, Any]]:
    """The recent tasks and actor calls of every worker of the cluster, as Chrome trace
    events (load the file in chrome://tracing or https://ui.perfetto.dev): one ``"X"`` event
    per span, ``pid`` a node, ``tid`` a worker's pid. Written to ``filename`` as JSON if given."""
    from ._timeline import chrome_trace, collect, write

    rt = _process.runtime_for_call()
    events = chrome_trace(rt.call(collect, rt.control))
    if filename is not None:
        write(events, filename)
    return events


class RuntimeContext:
    """What this process is in tray's terms (``tray.get_runtime_context()``): Ray's getters
    return hex strings, its properties ID objects (``.hex()``, ``.binary()``)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def get(self) -> dict[str, Any]:
        """Ray's summary: job, node, namespace, and the task or actor id where there is one."""
        out: dict[str, Any] = {"job_id": JobID(self._rt.job_id), "node_id": NodeID(self._rt.node_id),
                               "namespace": self.namespace}
        if self._rt.worker_id is not None:
            task_id = self.get_task_id()
            out["task_id"] = TaskID(task_id) if task_id is not None else None
        if self._rt.current_actor_id is not None:
            out["actor_id"] = ActorID(self._rt.current_actor_id)
        return out

    def get_job_id(self) -> str:
        return self._rt.job_id

    def get_node_id(self) -> str:
        return self._rt.node_id

    def get_worker_id(self) -> str:
        return self._rt.worker_id or self._rt.system.uid

    def get_task_id(self) -> str | None:
        running = _context.current.get()
        return running.task_id if running is not None else self._rt.current_task_id

    def is_canceled(self) -> bool:
        """Whether ``tray.cancel`` reached the actor call running here (a sync or threaded
        actor's: Ray's way to end one gracefully). RuntimeError in a driver or an async actor."""
        running = _context.current.get()
        if self._rt.worker_id is None or running is None:
            raise RuntimeError("is_canceled() is only for a task or actor call running in a worker")
        if in_asyncio():
            raise RuntimeError("is_canceled() is not for an async actor: a cancelled call gets asyncio.CancelledError")
        return running.task_id in _context.cancelled

    def get_actor_id(self) -> str | None:
        return self._rt.current_actor_id

    def get_task_name(self) -> str | None:
        """The running task's name (``Class.method`` in an actor call); None in a driver."""
        running = _context.current.get()
        return running.name if running is not None else None

    def get_task_function_name(self) -> str | None:
        """``module.qualname`` of the running task's function or method; None in a driver."""
        running = _context.current.get()
        return running.function_name if running is not None else None

    def get_actor_name(self) -> str | None:
        """The name the current actor was given (``name=``), "" if it has none (as Ray); None
        outside an actor."""
        actor_id = self._rt.current_actor_id
        if actor_id is None:
            return None
        rows = [r for r in _process.ask_control("list_actors") if r.get("actor_id") == actor_id]
        return (rows[0].get("name") or "") if rows else ""

    def get_placement_group_id(self) -> str | None:
        return getattr(self._rt, "current_placement_group_id", None)

    def get_assigned_resources(self) -> dict[str, float]:
        """The resources the current task or actor holds (Ray's names: a placement group's
        bundle resources as their base ones); {} in a driver."""
        if self._rt.worker_id is None:
            return {}
        assigned = getattr(self._rt, "assigned_resources", None)
        return {"CPU": 1.0} if assigned is None else dict(assigned)

    def get_node_labels(self) -> dict[str, str]:
        """The labels of the node this process runs on (``ray.io/node-id`` among them), as Ray's."""
        mine = [n for n in nodes() if n.get("NodeID") == self._rt.node_id]
        return dict(mine[0].get("Labels") or {}) if mine else {}

    def get_resource_ids(self) -> dict[str, list[str]]:
        """Ray's older name of :meth:`get_accelerator_ids` (deprecated there, with a warning)."""
        _deprecated("get_resource_ids()", "get_accelerator_ids()")
        return self.get_accelerator_ids()

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """The accelerators visible to this worker: ``{"GPU": [...]}`` (see ``get_gpu_ids``)."""
        return {"GPU": [str(i) for i in get_gpu_ids()]}

    @property
    def current_actor(self) -> Any:
        """A handle to the actor this runs in; raises RuntimeError outside an actor (as Ray)."""
        actor_id = self._rt.current_actor_id
        if actor_id is None:
            raise RuntimeError("current_actor is only available inside an actor")
        class_name, methods = getattr(self._rt, "current_actor_class", ("", {}))
        return ActorHandle(actor_id, class_name, methods, self._rt.job_id)

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether this actor's process is a restart (``max_restarts``) rather than its first."""
        actor_id = self._rt.current_actor_id
        if actor_id is None:
            return False
        rows = [r for r in _process.ask_control("list_actors") if r.get("actor_id") == actor_id]
        return bool(rows) and int(rows[0].get("num_restarts", 0) or 0) > 0

    @property
    def namespace(self) -> str:
        return self._rt.namespace

    @property
    def runtime_env(self) -> Any:
        """This process's runtime_env (a ``tray.runtime_env.RuntimeEnv``): the job's in a
        driver, the one the worker runs in (its packages as ``kv://`` URIs) in a task or actor."""
        from ._runtime_envs import current

        return current(self._rt)

    def get_runtime_env_string(self) -> str:
        """:attr:`runtime_env` as JSON (Ray's form)."""
        return self.runtime_env.serialize()

    # Ray deprecates these ID-object properties in favour of the get_*() strings, with a warning.

    @property
    def job_id(self) -> JobID:
        _deprecated("job_id", "get_job_id()")
        return JobID(self._rt.job_id)

    @property
    def node_id(self) -> NodeID:
        _deprecated("node_id", "get_node_id()")
        return NodeID(self._rt.node_id)

    @property
    def task_id(self) -> TaskID | None:
        _deprecated("task_id", "get_task_id()")
        task_id = self.get_task_id()
        return TaskID(task_id) if task_id is not None else None

    @property
    def actor_id(self) -> ActorID | None:
        _deprecated("actor_id", "get_actor_id()")
        actor_id = self._rt.current_actor_id
        return ActorID(actor_id) if actor_id is not None else None

    @property
    def current_placement_group_id(self) -> PlacementGroupID | None:
        _deprecated("current_placement_group_id", "get_placement_group_id()")
        group_id = self.get_placement_group_id()
        return PlacementGroupID(group_id) if group_id is not None else None

    @property
    def worker_id(self) -> WorkerID:
        return WorkerID(self.get_worker_id())


def _deprecated(name: str, instead: str) -> None:
    warnings.warn(f"RuntimeContext.{name} is deprecated. Use {instead} instead.", DeprecationWarning, stacklevel=3)


def get_gpu_ids() -> list[int | str]:
    """The GPUs this task or actor holds (Ray's ``get_gpu_ids``): its lease's own (fractions
    of a GPU share one), by their ids among the node's ``CUDA_VISIBLE_DEVICES`` if that names
    them; [] in a driver or without GPUs."""
    rt = _process.runtime_for_call()
    return list(rt.gpu_ids) if rt.worker_id is not None else []


def get_runtime_context() -> RuntimeContext:
    """What this process is in tray's terms: job, node, worker, and the running task or actor
    (starting tray with ``init()``'s defaults if it is not running, as Ray does).

    Returns:
        A :class:`RuntimeContext`.
    """
    return RuntimeContext(_process.runtime_for_call())
