"""The ``tray`` command line: ``tray start/stop/status``, ``tray up``, ``tray memory``, ...

Each subcommand is a function ``(args) -> int`` registered by :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def get_version() -> str:
    """The installed distribution's version, or ``tray.__version__`` when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tray")
    except PackageNotFoundError:
        import tray

        return str(getattr(tray, "__version__", "unknown"))


def _cmd_version(args: argparse.Namespace) -> int:
    """``tray version``: print the version."""
    print(f"tray {get_version()}")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    """``tray up services.toml``: run a supervision tree until SIGINT/SIGTERM."""
    from tray.supervisors._service import up

    return up(args.config, log_level=args.log_level)


def _cmd_microbenchmark(args: argparse.Namespace) -> int:
    """``tray microbenchmark``: Ray's microbenchmark lines and tray's own, on tray."""
    from tray._perf import run

    return run("tray", args.filter, args.json, args.quick)


def _cmd_memory(args: argparse.Namespace) -> int:
    """``tray memory``: every object reference of a running node, and its store's usage."""
    from tray._memory_cli import run

    return run(args.address, args.format, args.stats_only)


def _later(target: str) -> Callable[[argparse.Namespace], int]:
    """The subcommand ``"module:function"``, imported when it runs (``tray --help`` stays fast)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="tray",
        description="tray: a distributed runtime for Python, built as one actor system on trio.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {get_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print tray's version", description="Print tray's version.")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "up",
        help="run a supervision tree from a config",
        description="Start the supervision tree described by a TOML supervision config and keep it up;"
        " SIGINT or SIGTERM shuts it down in reverse start order.",
    )
    p.add_argument("config", help="a supervision config (TOML), e.g. services.toml")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_cmd_up)

    from tray.cluster._cli import add_start_arguments

    p = sub.add_parser("start", help="start a node: the head of a new cluster, or one joining a cluster",
                       description="Start a tray node in the background (or in the foreground with --block):"
                       " `tray start --head` starts a cluster, `tray start --address HOST:PORT` adds a node to it.")
    add_start_arguments(p)
    p.set_defaults(func=_later("tray.cluster._cli:start"))

    p = sub.add_parser("stop", help="stop the tray nodes this user started on this machine",
                       description="Stop the tray nodes (and their workers) this user started on this machine,"
                       " and remove what dead sessions left behind (session directories, shared memory).")
    p.add_argument("--force", action="store_true", help="SIGKILL at once instead of stopping gracefully")
    p.add_argument("--grace", type=float, default=10.0, help="seconds to wait before SIGKILL (default 10)")
    p.set_defaults(func=_later("tray.cluster._cli:stop"))

    p = sub.add_parser("status", help="show the cluster's nodes and resources",
                       description="Show every node of the cluster (alive or dead) and its resources, used/total.")
    p.add_argument("--address", help="the head's HOST:PORT (default: the cluster started on this machine)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=_later("tray.cluster._cli:status"))

    from tray._perf import add_arguments

    p = sub.add_parser(
        "microbenchmark",
        help="run the core microbenchmark (ray microbenchmark's lines, plus tray's own)",
        description="Run the lines of `ray microbenchmark` (same names and method) and tray's own"
        " (cold start, memory and CPU at rest, actor asks and tells); each prints NAME UNIT MEAN +- STD.",
    )
    add_arguments(p)
    p.set_defaults(func=_cmd_microbenchmark)

    p = sub.add_parser(
        "memory",
        help="show the objects of a running node and its object store's usage",
        description="List every object reference of a running tray node (id, size, owner, location:"
        " memory or spilled, reference kind) and the object store's usage. Without --address, the"
        " newest local node of this user.",
    )
    p.add_argument("--address", help="the node's address (default: the newest running local node)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--stats-only", action="store_true", help="only the object store's usage")
    p.set_defaults(func=_cmd_memory)

    from tray import _logs_cli, _timeline_cli

    p = sub.add_parser("logs", help="print the log files of the cluster's workers",
                       description="Print the stdout/stderr files of the workers that ran an actor (--actor), a task"
                       " (--task), of a node (--node) or a worker process (--worker); without one, list every file."
                       " Files on other machines are read through their node.")
    _logs_cli.add_arguments(p)
    p.set_defaults(func=_later("tray._logs_cli:run"))

    p = sub.add_parser("timeline", help="write the cluster's recent tasks and actor calls as a Chrome trace",
                       description="Write a Chrome trace (chrome://tracing, Perfetto) of every worker's recent tasks"
                       " and actor calls: one row per node (pid) and worker process (tid).")
    _timeline_cli.add_arguments(p)
    p.set_defaults(func=_later("tray._timeline_cli:run"))

    from tray._state_cli import add_list_arguments, add_summary_arguments

    p = sub.add_parser("list", help="list the cluster's actors, tasks, objects, nodes, workers, jobs, ...",
                       description="List one kind of the cluster's state, as Ray's `ray list`: rows with Ray's keys,"
                       " filtered with --filter KEY=VALUE (or KEY!=VALUE), at most --limit of them.")
    add_list_arguments(p)
    p.set_defaults(func=_later("tray._state_cli:run_list"))

    p = sub.add_parser("summary", help="summarize the cluster's tasks, actors or objects",
                       description="Counts of the cluster's tasks (by function and state), actors (by class and"
                       " state) or objects (by reference kind, with each node's store usage), as Ray's `ray summary`.")
    add_summary_arguments(p)
    p.set_defaults(func=_later("tray._state_cli:run_summary"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
