"""The dashboard's ASGI app (Starlette): the web UI's files, Ray's REST state endpoints,
the timeline, cluster status, the job API, package uploads for runtime_env, and
``/metrics``, all behind :class:`~tray.dashboard._auth.TokenAuth`.

Handlers ask the cluster through tray's public API and ``tray.lowlevel``, which wait on
tray's loop: each runs in a worker thread so the server's own loop never blocks. What only
some requests need (the job manager, runtime_env packages, the state API) is imported on the
first such request, so the server that a first page view starts stays small.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import tray

from .. import lowlevel
from ..exceptions import GetTimeoutError, RayActorError
from . import _metrics
from ._auth import TokenAuth

RESOURCES = ("nodes", "actors", "tasks", "objects", "workers", "jobs", "placement_groups")
SUMMARIES = {"tasks": "summarize_tasks", "actors": "summarize_actors", "objects": "summarize_objects"}  # of state
MAX_LIMIT = 10_000
TAIL_POLL_S = 0.5
HIDDEN_NAMESPACE_PREFIX = "_tray_"  # the dashboard's own driver and the job supervisors


def ok(data: Any, msg: str = "") -> JSONResponse:
    """Ray's REST envelope."""
    return JSONResponse({"result": True, "msg": msg, "data": data})


def fail(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"result": False, "msg": msg, "data": None}, status_code=status)


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(fn, *args)


def parse_filters(request: Request) -> list[tuple[str, str, str]]:
    """Ray's ``filter_keys``/``filter_predicates``/``filter_values`` query lists, or
    ``filter=key=value`` / ``filter=key!=value`` (as ``tray list --filter``)."""
    q = request.query_params
    keys, preds, values = q.getlist("filter_keys"), q.getlist("filter_predicates"), q.getlist("filter_values")
    if not (len(keys) == len(preds) == len(values)):
        raise ValueError("filter_keys, filter_predicates and filter_values must have the same length")
    filters = list(zip(keys, preds, values, strict=True))
    for f in q.getlist("filter"):
        if "!=" in f:
            k, _, v = f.partition("!=")
            filters.append((k.strip(), "!=", v.strip()))
        elif "=" in f:
            k, _, v = f.partition("=")
            filters.append((k.strip(), "=", v.strip()))
        else:
            raise ValueError(f"bad filter {f!r}: use key=value or key!=value")
    return filters


def int_param(request: Request, name: str, default: int, lo: int = 0, hi: int = MAX_LIMIT) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def listing(resource: str, filters: list[tuple[str, str, str]], limit: int, detail: bool) -> dict[str, Any]:
    from ..util import state

    rows, total = state.query(resource, filters=filters, limit=limit, detail=detail)
    if resource == "jobs":
        hidden = [r for r in rows if str(r.get("namespace") or "").startswith(HIDDEN_NAMESPACE_PREFIX)]
        rows = [r for r in rows if r not in hidden]
        total -= len(hidden)
    return {"result": {"total": total, "num_after_truncation": len(rows), "num_filtered": total, "result": rows,
                       "partial_failure_warning": "", "warnings": None}}


def cluster_status(token: str) -> dict[str, Any]:
    nodes = lowlevel.cluster_state("nodes")
    total: dict[str, float] = {}
    avail: dict[str, float] = {}
    for n in nodes:
        if n["state"] != "ALIVE":
            continue
        for k, v in (n.get("resources_total") or {}).items():
            total[k] = total.get(k, 0) + v
        for k, v in (n.get("resources_available") or {}).items():
            avail[k] = avail.get(k, 0) + v
    _rows, stores, _home = lowlevel.memory_state()
    return {"nodes": nodes, "alive": sum(n["state"] == "ALIVE" for n in nodes),
            "dead": sum(n["state"] != "ALIVE" for n in nodes), "resources_total": total,
            "resources_available": avail, "resources_used": {k: total[k] - avail.get(k, 0) for k in total},
            "object_stores": stores, "node_stats": _metrics.node_stats(_metrics.scrape_nodes(token)),
            "time": time.time()}


def prometheus_targets() -> list[dict[str, Any]]:
    """Prometheus' HTTP service discovery: every alive node's own metrics port."""
    return [{"targets": [url.partition("://")[2]], "labels": {"NodeId": node_id}}
            for node_id, url in sorted(_metrics.node_urls().items())]


SERVE_CONTROLLER = ("SERVE_CONTROLLER_ACTOR", "serve")  # Serve's controller: Ray's name and namespace
SERVE_ASK_TIMEOUT_S = 10.0


def serve_details() -> dict[str, Any]:
    """Serve's applications as Ray's ``/api/serve/applications/`` shows them, asked of Serve's
    controller by its (Ray's) name; no applications when Serve does not run."""
    try:
        controller = tray.get_actor(SERVE_CONTROLLER[0], namespace=SERVE_CONTROLLER[1])
    except ValueError:
        return {"controller_info": None, "proxy_location": None, "http_options": None, "applications": {}}
    raw = tray.get(controller.status.remote(), timeout=SERVE_ASK_TIMEOUT_S)
    apps = {}
    for name, app in raw["applications"].items():
        deployments = {dn: {"name": dn, "status": d["status"], "message": d["message"],
                            "target_num_replicas": d["target"], "replica_states": d["replica_states"]}
                       for dn, d in app["deployments"].items()}
        apps[name] = {"name": name, "route_prefix": app["route_prefix"], "status": app["status"],
                      "message": app["message"], "last_deployed_time_s": app["last_deployed_time_s"],
                      "ingress": app["ingress"], "deployments": deployments}
    proxy = raw.get("proxy")
    return {"controller_info": {"actor_name": SERVE_CONTROLLER[0]},
            "proxy_location": "HeadOnly" if proxy else None, "http_options": proxy, "applications": apps}


def job_timeline(job_id: str | None) -> list[dict[str, Any]]:
    events = tray.timeline()
    if not job_id:
        return events
    tasks = {t["task_id"] for t in lowlevel.cluster_state("tasks") if t.get("job_id") == job_id}
    spans = [e for e in events if e["ph"] != "M" and e.get("args", {}).get("task_id") in tasks]
    used = {(e["pid"], e["tid"]) for e in spans} | {(e["pid"], 0) for e in spans}
    return [e for e in events if e["ph"] == "M" and (e["pid"], e["tid"]) in used] + spans


def log_listing(node_id: str | None, glob: str | None) -> dict[str, Any]:
    import fnmatch

    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in lowlevel.log_files(node_id):
        if glob and not fnmatch.fnmatch(row["name"], glob):
            continue
        out.setdefault(row["node_id"], {}).setdefault("worker_" + row["stream"], []).append(row)
    return {"result": out}


def _packages() -> Any:
    """runtime_env's package store (imported on the first package request)."""
    from ..job_submission import runtime_env

    return runtime_env


def build_app(*, token: str, log_dir: str, resources_dir: str, url: str = "") -> Any:
    """The dashboard: ``token`` guards it; job logs go to ``log_dir``; runtime envs are
    prepared under ``resources_dir``."""
    history = _metrics.History(token)
    static_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

    @functools.cache
    def jobs() -> Any:
        from ..job_submission.manager import JobManager

        return JobManager(log_dir, resources_dir)

    async def index(request: Request) -> Response:
        return FileResponse(os.path.join(static_dir, "index.html"), headers={"cache-control": "no-cache"})

    async def version(request: Request) -> Response:
        return JSONResponse({"version": "tray-" + tray.__version__, "ray_version": "2.60.0",
                             "tray_version": tray.__version__, "session_name": url})

    async def state_list(request: Request) -> Response:
        resource = request.path_params["resource"]
        if resource not in RESOURCES:
            return fail(404, f"unknown resource {resource!r}; one of: {', '.join(RESOURCES)}")
        try:
            filters = parse_filters(request)
            limit = int_param(request, "limit", 100, 1, MAX_LIMIT)
            detail = request.query_params.get("detail", "false").lower() in ("1", "true", "yes")
            return ok(await run(listing, resource, filters, limit, detail))
        except ValueError as exc:
            return fail(400, str(exc))

    async def summarize(request: Request) -> Response:
        resource = request.path_params["resource"]
        if resource not in SUMMARIES:
            return fail(404, f"no summary of {resource!r}; one of: {', '.join(SUMMARIES)}")
        from ..util import state

        return ok({"result": {"node_id_to_summary": await run(getattr(state, SUMMARIES[resource]))}})

    async def logs(request: Request) -> Response:
        return ok(await run(log_listing, request.query_params.get("node_id"), request.query_params.get("glob")))

    async def log_file(request: Request) -> Response:
        q = request.query_params
        node_id, name = q.get("node_id"), q.get("filename")
        if not node_id or not name:
            return fail(400, "node_id and filename are needed")
        try:
            lines = int_param(request, "lines", 1000, -1, 1_000_000)
            offset = int(q["offset"]) if "offset" in q else None
            if offset is None:
                data, end, _size = await run(lowlevel.read_log, node_id, name, -(1 << 20))
                parts = data.decode(errors="replace").split("\n")
                text = "\n".join(parts[-lines - 1:]) if lines >= 0 else "\n".join(parts)
            else:
                data, end, _size = await run(lowlevel.read_log, node_id, name, offset)
                text = data.decode(errors="replace")
        except ValueError as exc:
            return fail(404, str(exc))
        return PlainTextResponse(text, headers={"x-tray-offset": str(end)})

    async def timeline(request: Request) -> Response:
        return JSONResponse(await run(job_timeline, request.query_params.get("job_id")))

    async def status(request: Request) -> Response:
        return ok({"clusterStatus": await run(cluster_status, token)})

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(await run(_metrics.exposition, token), media_type=CONTENT_TYPE_LATEST)

    async def prometheus_sd(request: Request) -> Response:
        return JSONResponse(await run(prometheus_targets))

    async def serve_applications(request: Request) -> Response:
        try:
            return JSONResponse(await run(serve_details))
        except (GetTimeoutError, RayActorError) as exc:
            return fail(503, f"Serve's controller did not answer: {exc}")

    async def metric_series(request: Request) -> Response:
        return ok({"samples": await run(history.sample)})

    # ------------------------------------------------------------------- jobs

    async def job_submit(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return fail(400, "the body must be JSON")
        if not isinstance(body, dict):
            return fail(400, "the body must be a JSON object")
        allowed = {"entrypoint", "submission_id", "job_id", "runtime_env", "metadata", "entrypoint_num_cpus",
                   "entrypoint_num_gpus", "entrypoint_memory", "entrypoint_resources"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            return fail(400, f"unknown field(s) {', '.join(unknown)}")
        sid = body.pop("submission_id", None) or body.pop("job_id", None)
        body.pop("job_id", None)
        try:
            sid = await run(lambda: jobs().submit(submission_id=sid, **body))
        except (ValueError, TypeError) as exc:
            return fail(400, str(exc))
        return JSONResponse({"job_id": sid, "submission_id": sid})

    async def job_list(request: Request) -> Response:
        return JSONResponse([i.to_json() for i in await run(jobs().list)])

    async def job_get(request: Request) -> Response:
        info = await run(jobs().get, request.path_params["job_id"])
        if info is None:
            return fail(404, f"no job {request.path_params['job_id']!r}")
        return JSONResponse(info.to_json())

    async def job_stop(request: Request) -> Response:
        try:
            return JSONResponse({"stopped": await run(jobs().stop, request.path_params["job_id"])})
        except KeyError:
            return fail(404, f"no job {request.path_params['job_id']!r}")

    async def job_delete(request: Request) -> Response:
        try:
            return JSONResponse({"deleted": await run(jobs().delete, request.path_params["job_id"])})
        except KeyError:
            return fail(404, f"no job {request.path_params['job_id']!r}")
        except ValueError as exc:
            return fail(400, str(exc))

    async def job_logs(request: Request) -> Response:
        try:
            offset = int(request.query_params.get("offset", 0))
            text, end = await run(jobs().logs, request.path_params["job_id"], offset)
        except KeyError:
            return fail(404, f"no job {request.path_params['job_id']!r}")
        return JSONResponse({"logs": text, "offset": end})

    async def job_logs_tail(request: Request) -> Response:
        sid = request.path_params["job_id"]
        if await run(jobs().get, sid) is None:
            return fail(404, f"no job {sid!r}")

        async def stream() -> Any:
            offset, finished = 0, False
            while True:
                text, offset = await run(jobs().logs, sid, offset)
                if text:
                    yield text.encode()
                elif finished:
                    return
                else:
                    info = await run(jobs().get, sid)
                    finished = info is None or info.status.is_terminal()  # one more read after the end
                    if not finished:
                        await anyio.sleep(TAIL_POLL_S)

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    # --------------------------------------------------------------- packages

    def _pkg_name(request: Request) -> str:
        name = request.path_params["name"]
        if "/" in name or not name.startswith("pkg_") or not name.endswith(".zip"):
            raise ValueError(f"bad package name {name!r}")
        return name

    async def package_exists(request: Request) -> Response:
        try:
            name = _pkg_name(request)
        except ValueError as exc:
            return fail(400, str(exc))
        found = await run(lambda: lowlevel.kv_exists(name, namespace=_packages().PKG_NAMESPACE))
        return ok({"exists": found}) if found else fail(404, f"no package {name}")

    async def package_put(request: Request) -> Response:
        try:
            name = _pkg_name(request)
        except ValueError as exc:
            return fail(400, str(exc))
        data = await request.body()
        if len(data) > _packages().MAX_PACKAGE_BYTES:
            return fail(413, f"package over {_packages().MAX_PACKAGE_BYTES >> 20} MiB")
        if _packages().package_uri(data) != _packages().PKG_SCHEME + name:
            return fail(400, "the package's content does not match its name (sha256)")
        await run(lambda: lowlevel.kv_put(name, data, namespace=_packages().PKG_NAMESPACE))
        return ok({"uploaded": name})

    routes = [
        Route("/", index),
        Route("/api/version", version),
        Route("/api/v0/timeline", timeline),
        Route("/api/v0/logs", logs),
        Route("/api/v0/logs/file", log_file),
        Route("/api/v0/{resource}/summarize", summarize),
        Route("/api/v0/{resource}", state_list),
        Route("/api/cluster_status", status),
        Route("/api/metrics/series", metric_series),
        Route("/metrics", metrics),
        Route("/api/prometheus/sd", prometheus_sd),
        Route("/api/serve/applications/", serve_applications),
        Route("/api/jobs/", job_submit, methods=["POST"]),
        Route("/api/jobs/", job_list, methods=["GET"]),
        Route("/api/jobs/{job_id}", job_get, methods=["GET"]),
        Route("/api/jobs/{job_id}", job_delete, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/stop", job_stop, methods=["POST"]),
        Route("/api/jobs/{job_id}/logs", job_logs),
        Route("/api/jobs/{job_id}/logs/tail", job_logs_tail),
        Route("/api/packages/{name}", package_exists, methods=["GET"]),
        Route("/api/packages/{name}", package_put, methods=["PUT"]),
        Mount("/static", StaticFiles(directory=static_dir), name="static"),
    ]
    return TokenAuth(Starlette(routes=routes), token)
