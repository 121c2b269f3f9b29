"""``tray job submit|status|logs|stop|list|delete``: Ray's ``ray job`` commands, over the
dashboard's job API (``--address http://HOST:8265``, default: this machine's cluster)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

POLL_S = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("job", help="submit, watch and stop jobs through the dashboard",
                       description="Submit and manage jobs on a tray cluster (Ray's `ray job`).")
    jobs = p.add_subparsers(dest="job_command", metavar="COMMAND", required=True)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--address", help="the dashboard's http://HOST:PORT (default: TRAY_ADDRESS if an http URL, "
                       "else the cluster started on this machine)")

    s = jobs.add_parser("submit", help="submit a job: tray job submit [options] -- python script.py")
    common(s)
    s.add_argument("--submission-id", "--job-id", dest="submission_id")
    s.add_argument("--working-dir", help="a local directory to upload; the job runs in it")
    s.add_argument("--runtime-env-json", help="the runtime_env as JSON")
    s.add_argument("--runtime-env", help="the runtime_env in a JSON or YAML file")
    s.add_argument("--metadata-json", help="metadata as a JSON object of strings")
    s.add_argument("--entrypoint-num-cpus", type=float)
    s.add_argument("--entrypoint-num-gpus", type=float)
    s.add_argument("--entrypoint-memory", type=int)
    s.add_argument("--entrypoint-resources", help="custom resources as JSON")
    s.add_argument("--no-wait", action="store_true", help="return once submitted, without following its logs")
    s.add_argument("entrypoint", nargs=argparse.REMAINDER, help="the command, after --")
    s.set_defaults(func=submit)
    for name, fn, helptext in (("status", status, "print a job's status"), ("stop", stop, "stop a job"),
                               ("delete", delete, "forget a job that has ended")):
        q = jobs.add_parser(name, help=helptext)
        common(q)
        q.add_argument("job_id")
        if name == "stop":
            q.add_argument("--no-wait", action="store_true", help="do not wait for the job to end")
        q.set_defaults(func=fn)
    q = jobs.add_parser("logs", help="print a job's logs")
    common(q)
    q.add_argument("job_id")
    q.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    q.set_defaults(func=logs)
    q = jobs.add_parser("list", help="list the cluster's jobs")
    common(q)
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(func=list_jobs)


def _client(args: argparse.Namespace) -> Any:
    from ._client import JobSubmissionClient

    return JobSubmissionClient(args.address)


def _fail(what: str, exc: BaseException) -> int:
    print(f"tray job {what}: {exc}", file=sys.stderr)
    return 1


def _runtime_env(args: argparse.Namespace) -> dict[str, Any]:
    env: dict[str, Any] = {}
    if args.runtime_env:
        with open(args.runtime_env) as f:
            text = f.read()
        try:
            env = json.loads(text)
        except json.JSONDecodeError:
            import yaml  # Ray's runtime_env files are often YAML

            env = yaml.safe_load(text)
    if args.runtime_env_json:
        env.update(json.loads(args.runtime_env_json))
    if args.working_dir:
        env["working_dir"] = args.working_dir
    return env


def _follow(client: Any, job_id: str) -> None:
    import asyncio

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    asyncio.run(tail())


def submit(args: argparse.Namespace) -> int:
    entry = args.entrypoint[1:] if args.entrypoint[:1] == ["--"] else args.entrypoint
    if not entry:
        print("tray job submit: give the entrypoint after --, e.g. tray job submit -- python script.py",
              file=sys.stderr)
        return 2
    import shlex

    try:
        client = _client(args)
        sid = client.submit_job(
            entrypoint=" ".join(shlex.quote(a) if len(entry) > 1 else a for a in entry),
            submission_id=args.submission_id, runtime_env=_runtime_env(args),
            metadata=json.loads(args.metadata_json) if args.metadata_json else None,
            entrypoint_num_cpus=args.entrypoint_num_cpus, entrypoint_num_gpus=args.entrypoint_num_gpus,
            entrypoint_memory=args.entrypoint_memory,
            entrypoint_resources=json.loads(args.entrypoint_resources) if args.entrypoint_resources else None)
    except (ConnectionError, PermissionError, RuntimeError, ValueError, OSError) as exc:
        return _fail("submit", exc)
    print(f"Job '{sid}' submitted successfully")
    if args.no_wait:
        print(f"  status: tray job status {sid}\n  logs:   tray job logs {sid} --follow\n  stop:   tray job stop {sid}")
        return 0
    print(f"------------------------------------------\nJob '{sid}' logs:\n"
          f"------------------------------------------", flush=True)
    _follow(client, sid)
    info = client.get_job_info(sid)
    print(f"------------------------------------------\nJob '{sid}' {info.status.value}\n"
          f"------------------------------------------")
    return 0 if info.status.value == "SUCCEEDED" else 1


def status(args: argparse.Namespace) -> int:
    try:
        info = _client(args).get_job_info(args.job_id)
    except (ConnectionError, PermissionError, RuntimeError) as exc:
        return _fail("status", exc)
    print(f"Status for job '{args.job_id}': {info.status.value}")
    if info.message:
        print(f"Status message: {info.message}")
    return 0


def stop(args: argparse.Namespace) -> int:
    try:
        client = _client(args)
        stopped = client.stop_job(args.job_id)
        if stopped and not args.no_wait:
            while not client.get_job_status(args.job_id).is_terminal():
                time.sleep(POLL_S)
    except (ConnectionError, PermissionError, RuntimeError) as exc:
        return _fail("stop", exc)
    print(f"Job '{args.job_id}' {'was stopped' if stopped else 'had already ended'}")
    return 0


def delete(args: argparse.Namespace) -> int:
    try:
        _client(args).delete_job(args.job_id)
    except (ConnectionError, PermissionError, RuntimeError) as exc:
        return _fail("delete", exc)
    print(f"Job '{args.job_id}' deleted successfully")
    return 0


def logs(args: argparse.Namespace) -> int:
    try:
        client = _client(args)
        if args.follow:
            _follow(client, args.job_id)
        else:
            sys.stdout.write(client.get_job_logs(args.job_id))
    except (ConnectionError, PermissionError, RuntimeError) as exc:
        return _fail("logs", exc)
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    try:
        jobs = _client(args).list_jobs()
    except (ConnectionError, PermissionError, RuntimeError) as exc:
        return _fail("list", exc)
    if args.format == "json":
        print(json.dumps([j.to_json() for j in jobs], indent=1))
        return 0
    rows = [(j.submission_id or "", j.status.value, j.entrypoint[:60]) for j in jobs]
    width = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("SUBMISSION_ID", "STATUS", "ENTRYPOINT"))]
    for row in [("SUBMISSION_ID", "STATUS", "ENTRYPOINT"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, width, strict=True)).rstrip())
    return 0
