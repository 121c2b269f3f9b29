"""Collecting the cluster's state for ``tray.util.state`` (through ``tray.lowlevel``) and
``tray list``: no web server.

The control store knows the nodes, actors, jobs (with each driver's owner actor) and
placement groups; each node's scheduler knows its worker processes; each process knows
the tasks it submitted and the objects it holds. A question goes to the control store,
then to every node and every process at once, and each ask is bounded by a timeout: a
process that died or hangs costs at most ``ASK_TIMEOUT_S`` and is left out, never waited
for. The same coroutines run in a driver's loop and in the CLI's own actor system.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from .. import _config
from ..actors import ActorRef, ActorSystem
from ..cluster._control import CONTROL_NAME
from ..cluster._session import find_sessions, normalize, resolve
from ..store import STORE_NAME
from ._tasklog import ACTOR_TASK, PAUSED_AT_BREAKPOINT, RUNNING, SUBMITTED_TO_WORKER, unpack

ASK_TIMEOUT_S = 5.0


async def ask(method: Any, *args: Any) -> Any:
    """The answer, or None if the process is gone or does not answer within ``ASK_TIMEOUT_S``."""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            return await method.ask(*args)
        except Exception:  # noqa: BLE001 - a process that died meanwhile has nothing to say
            return None
    return None


async def must(method: Any, *args: Any) -> Any:
    """The control store's answer: without it there is nothing to show, so not answering is an error."""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            return await method.ask(*args)
        except Exception as exc:  # noqa: BLE001 - said in words below
            raise ConnectionError(f"the cluster's control store did not answer: {exc}") from None
    raise ConnectionError(f"the cluster's control store did not answer within {ASK_TIMEOUT_S:.0f} s")


async def each(fn: Callable[[Any], Awaitable[Any]], items: Sequence[Any]) -> list[Any]:
    """``fn(item)`` for every item, all at once; the results in order. A control store that
    does not answer is one ConnectionError, not a group of them."""
    results: list[Any] = [None] * len(items)
    lost: list[ConnectionError] = []

    async def one(i: int, item: Any) -> None:
        try:
            results[i] = await fn(item)
        except ConnectionError as exc:
            lost.append(exc)

    async with trio.open_nursery() as nursery:
        for i, item in enumerate(items):
            nursery.start_soon(one, i, item)
    if lost:
        raise lost[0]
    return results


async def _all(*coros: Awaitable[Any]) -> list[Any]:
    """Await ``coros`` all at once; their results in order."""
    return await each(lambda c: c, coros)


async def drivers(control: ActorRef) -> list[dict[str, Any]]:
    """The running jobs' rows, each with its driver's owner actor (``driver``)."""
    jobs = [j for j in await must(control.list_jobs) if j["status"] == "RUNNING"]
    infos = await each(lambda j: ask(control.job_info, j["job_id"]), jobs)
    return [info for info in infos if info is not None and info.get("driver") is not None]


async def processes(control: ActorRef) -> list[dict[str, Any]]:
    """Every alive node's worker processes (``NodeScheduler.processes`` rows, with their executors)."""
    view = await must(control.view)
    per_node = await each(lambda entry: ask(entry[0].processes), list(view.values()))
    return [p for rows in per_node if rows for p in rows]


async def tasks(system: ActorSystem, control: ActorRef) -> list[dict[str, Any]]:
    """Every owner's task rows: the drivers' and every worker's. A task a worker says it runs
    is RUNNING; an actor call gets its class name and where its actor runs from the actor table."""
    jobs, procs, actor_rows = await _all(drivers(control), processes(control), must(control.list_actors))
    owners = [j["driver"] for j in jobs] + [p["executor"] for p in procs]
    answers = [a for a in await each(lambda ref: ask(ref.describe_tasks), owners) if a is not None]
    running = {task_id for a in answers for task_id in a["running"]}
    paused = {task_id for a in answers for task_id in a.get("paused", ())}
    actors = {a["actor_id"]: a for a in actor_rows}
    workers = {(p["node_id"], p["pid"]): p["worker_id"] for p in procs}
    rows = [row for a in answers for row in unpack(a["tasks"])]
    for row in rows:
        if row["state"] == SUBMITTED_TO_WORKER and row["task_id"] in running:
            row["state"] = PAUSED_AT_BREAKPOINT if row["task_id"] in paused else RUNNING
        actor = actors.get(row["actor_id"]) if row["type"] == ACTOR_TASK else None
        if actor is not None:
            row["name"] = row["func_or_class_name"] = f"{actor['class_name']}.{row['name']}"
            if row["start_time_ms"] is not None and row["node_id"] is None:  # sent to it: it runs there
                row["node_id"], row["worker_pid"] = actor["node_id"], actor["pid"] or None
                row["worker_id"] = workers.get((actor["node_id"], actor["pid"]))
    rows.sort(key=lambda r: -r["creation_time_ms"])  # newest first: a limit keeps the latest
    return rows


async def workers(system: ActorSystem, control: ActorRef) -> list[dict[str, Any]]:
    """Ray's WorkerState rows: every node's worker processes, and the running jobs' drivers."""
    procs, jobs, nodes = await _all(processes(control), drivers(control), must(control.nodes_table))
    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in nodes}
    rows = [{"worker_id": p["worker_id"], "is_alive": True, "worker_type": "WORKER", "exit_type": None,
             "node_id": p["node_id"], "ip": ips.get(p["node_id"]), "pid": p["pid"], "job_id": p["job_id"] or None,
             "actor_id": p["actor_id"], "leased": p["leased"]} for p in procs]
    rows += [{"worker_id": j["driver"].actor_id.partition(":")[0], "is_alive": True, "worker_type": "DRIVER",
              "exit_type": None, "node_id": j.get("node_id"), "ip": ips.get(j.get("node_id")), "pid": j.get("pid"),
              "job_id": j["job_id"], "actor_id": None, "leased": False} for j in jobs]
    return rows


async def lookup(system: ActorSystem, address: str, name: str) -> ActorRef | None:
    """The actor registered as ``name`` at ``address`` (maybe this system), or None if none
    is, or the node does not answer in time."""
    if address == system.address:
        return system.lookup(name)
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            return await system.lookup_remote(address, name)
        except Exception:  # noqa: BLE001 - unreachable: the caller says so or skips it
            return None
    return None


async def node_objects(system: ActorSystem, address: str, owners: Sequence[ActorRef],
                       scheduler: ActorRef | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """``(rows, store_stats)`` of the node at ``address``: what its worker processes and
    ``owners`` (the drivers attached to it) hold, and where its store keeps each stored
    value (memory or spilled). None if the node does not answer."""
    store = await lookup(system, address, STORE_NAME)
    scheduler = scheduler or await lookup(system, address, "tray.scheduler")
    if store is None or scheduler is None:
        return None
    stats, placed, procs = await _all(ask(store.stats), ask(store.list_objects), ask(scheduler.processes))
    if stats is None:
        return None
    sources = list(owners) + [p["executor"] for p in procs or ()]
    answers = await each(lambda ref: ask(ref.describe_objects), sources)
    where = {r["object_id"]: r for r in placed or ()}
    rows = [row for a in answers if a for row in a]
    for row in rows:
        kept = where.get(row.pop("store_key") or "")
        row["location"] = kept["location"] if kept is not None else "memory"
        row["pinned"] = kept is not None and kept["pins"] > 0  # read by a running task: not spilled
    return rows, stats


async def objects(system: ActorSystem, control: ActorRef) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every node's object rows (with ``node_id`` and ``ip``) and each node's store stats."""
    view, jobs, nodes = await _all(must(control.view), drivers(control), must(control.nodes_table))
    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in nodes}
    items = list(view.items())

    async def one(item: tuple[str, tuple]) -> Any:
        node_id, (scheduler, _total, _free, address) = item
        owners = [j["driver"] for j in jobs if j.get("node_id") == node_id]
        return await node_objects(system, address, owners, scheduler)

    rows: list[dict[str, Any]] = []
    stores: dict[str, dict[str, Any]] = {}
    for (node_id, _entry), found in zip(items, await each(one, items), strict=True):
        if found is None:
            continue
        for row in found[0]:
            row["node_id"], row["ip"] = node_id, ips.get(node_id)
        rows += found[0]
        stores[node_id] = found[1]
    rows.sort(key=lambda r: (-(r["object_size"] or 0), r["object_id"], r["pid"]))
    return rows, stores


# ---------------------------------------------------------------- from outside a driver


def target(address: str | None) -> tuple[str, str]:
    """``(address, token)`` of the cluster to ask: ``address``, else the newest head started
    on this machine, else the newest local ``tray.init()`` driver (its node's address)."""
    if address not in (None, "auto"):
        sessions = find_sessions()
        wanted = address if address.startswith("unix://") else normalize(address)
        match = next((s for s in sessions if s["address"] == wanted), None)
        token = _config.get("cluster_token") or (match["token"] if match is not None else None)
        if token is None:
            return resolve(address)  # says how to give the token
        return wanted, token
    try:
        return resolve("auto")
    except ConnectionError:
        programs = find_sessions("driver")
        if not programs:
            raise ConnectionError("no running tray cluster or tray.init() program of this user was found on this "
                                  "machine; start one, or pass --address HOST:PORT") from None
        return programs[0]["address"], programs[0]["token"]


async def control_at(system: ActorSystem, address: str) -> ActorRef:
    """The control store of the cluster that the node at ``address`` belongs to."""
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            control = await system.lookup_remote(address, CONTROL_NAME)
            if control is None:  # not the head: its node knows where the head is
                scheduler = await system.lookup_remote(address, "tray.scheduler")
                control = (await scheduler.node_info.ask())["control"] if scheduler is not None else None
        except Exception as exc:  # noqa: BLE001 - said in words
            raise ConnectionError(f"cannot reach a tray node at {address}: {exc}") from None
        if control is None:
            raise ConnectionError(f"no tray node answers at {address}")
        return control
    raise ConnectionError(f"the tray node at {address} did not answer within {ASK_TIMEOUT_S:.0f} s")


async def at(address: str, token: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``fn(system, control, *args)`` against the cluster at ``address``, from a system of our own."""
    async with ActorSystem(token=token) as system:
        return await fn(system, await control_at(system, address), *args)


# ------------------------------------------------------------- rows per resource, Ray's keys


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


async def nodes(system: ActorSystem, control: Any) -> list[dict[str, Any]]:
    return [{"node_id": n["NodeID"], "node_ip": n["NodeManagerAddress"], "is_head_node": n["IsHead"],
             "state": n["State"], "state_message": n["DeathReason"], "node_name": n["NodeManagerHostname"],
             "resources_total": n["Resources"], "labels": n["Labels"], "resources_available": n["Available"],
             "address": n["Address"], "pid": n["Pid"], "start_time_ms": _ms(n["StartTime"]),
             "end_time_ms": _ms(n["EndTime"])} for n in await must(control.nodes_table)]


async def actors(system: ActorSystem, control: Any) -> list[dict[str, Any]]:
    return [{"actor_id": a["actor_id"], "class_name": a["class_name"], "state": a["state"], "job_id": a["job_id"],
             "name": a["name"], "node_id": a["node_id"], "pid": a["pid"] or None, "ray_namespace": a["namespace"],
             "is_detached": a["detached"], "num_restarts": a["num_restarts"], "death_cause": a["death_cause"]}
            for a in await must(control.list_actors)]


async def jobs(system: ActorSystem, control: Any) -> list[dict[str, Any]]:
    return [{"job_id": j["job_id"], "submission_id": None, "entrypoint": j.get("entrypoint", ""), "type": "DRIVER",
             "status": j["status"], "message": None, "error_type": None,
             "driver_info": {"id": j["job_id"], "node_id": j.get("node_id"), "pid": j.get("pid")},
             "start_time": _ms(j["start_time"]), "end_time": _ms(j["end_time"]), "driver_node_id": j.get("node_id"),
             "namespace": j.get("namespace")} for j in await must(control.list_jobs)]


async def placement_groups(system: ActorSystem, control: Any) -> list[dict[str, Any]]:
    return [{"placement_group_id": p["placement_group_id"], "name": p["name"], "creator_job_id": p["job_id"],
             "state": p["state"], "bundles": p["bundles"], "strategy": p["strategy"], "is_detached": p["detached"],
             "ray_namespace": p["namespace"], "bundles_to_node_id": p["bundles_to_node_id"]}
            for p in await must(control.placement_group_info)]


async def object_rows(system: ActorSystem, control: Any) -> list[dict[str, Any]]:
    return (await objects(system, control))[0]


SOURCES: dict[str, Callable[..., Any]] = {
    "nodes": nodes, "actors": actors, "tasks": tasks, "objects": object_rows, "workers": workers, "jobs": jobs,
    "placement_groups": placement_groups,
}


def query(fn: Callable[..., Awaitable[Any]], address: str | None) -> Any:
    """``fn(system, control)`` in this driver's loop, or against the cluster at ``address``
    (or, outside a driver, the one ``tray list`` would find)."""
    from . import _runtime

    rt = _runtime.current()
    if address is None and rt is not None:
        rt.table.collect()  # refs dropped a moment ago are gone from the listing too
        return rt.call(fn, rt.system, rt.control)
    where, token = target(address)
    return trio.run(at, where, token, fn)


def rows(kind: str, address: str | None = None) -> list[dict[str, Any]]:
    """Every row of one resource (a key of ``SOURCES``), with all of Ray's columns."""
    if kind not in SOURCES:
        raise ValueError(f"unknown resource {kind!r}; one of: {', '.join(SOURCES)}")
    return query(SOURCES[kind], address)


async def _objects_and_stores(system: ActorSystem, control: Any) -> tuple[list, dict, str | None]:
    from . import _runtime

    found, stores = await objects(system, control)
    rt = _runtime.current()
    if rt is not None and rt.system is system:
        return found, stores, rt.node_id
    heads = [n["node_id"] for n in await nodes(system, control) if n["is_head_node"] and n["state"] == "ALIVE"]
    return found, stores, heads[0] if heads else None


def objects_and_stores(address: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """``(object rows, {node_id: store usage}, this driver's node id or else the head's)``."""
    return query(_objects_and_stores, address)


async def node_memory(system: Any, address: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, store_stats)`` of the node at ``address`` (default: the node ``system`` hosts),
    with the objects of the driver hosting it, if one does (``tray memory``)."""
    address = address or system.address
    owner = await lookup(system, address, "tray.owner")
    found = await node_objects(system, address, [owner] if owner is not None else [])
    if found is None:
        raise ConnectionError(f"no tray node answers at {address}")
    found_rows, stats = found
    found_rows.sort(key=lambda r: (-(r["object_size"] or 0), r["object_id"], r["pid"]))
    return found_rows, stats
