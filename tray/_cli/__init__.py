"""The ``tray`` command: one root parser over the command groups of :data:`COMMANDS`.

Each row of :data:`COMMANDS` names a command, the ``"module:function"`` that registers it
and its one-line help. Only the command being run has its module imported (``tray --help``
and ``tray status`` stay fast); the others appear in ``tray --help`` from the table alone.

To add a command (a library's ``tray serve``, say), add one row::

    "serve": Command("tray.serve._cli:register", "run and manage Serve applications"),
    "job": Command("tray.job_submission._cli:register", "submit, watch and stop jobs through the dashboard"),
    "dashboard": Command("tray.dashboard._cli:register", "print the URL of this machine's cluster dashboard"),

where ``register(subparsers)`` adds the command's parser (``subparsers.add_parser("serve",
description=...)``, with its arguments) and sets ``func``, a ``run(args) -> int`` that
returns the exit status. One register function may add several commands
(``tray._cli.cluster:register`` adds start, stop and status): give each its row, with the
same function. tray's own commands print tables with :func:`tray._cli._output.table` and
turn expected errors into one line and an exit status with :func:`tray._cli._output.reports`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["COMMANDS", "Command", "build_parser", "get_version", "main"]


class Command(NamedTuple):
    """A row of the command table: who registers the command, and its help in ``tray --help``."""

    register: str  # "module:function"; the function takes the root's subparsers
    help: str


COMMANDS: dict[str, Command] = {
    "version": Command("tray._cli:register_version", "print tray's version"),
    "up": Command("tray._cli.up:register", "run a supervision tree from a config"),
    "start": Command("tray._cli.cluster:register",
                     "start a node: the head of a new cluster, or one joining a cluster"),
    "stop": Command("tray._cli.cluster:register", "stop the tray nodes this user started on this machine"),
    "status": Command("tray._cli.cluster:register", "show the cluster's nodes and resources"),
    "microbenchmark": Command("tray._cli.perf:register",
                              "run the core microbenchmark (ray microbenchmark's lines, plus tray's own)"),
    "memory": Command("tray._cli.memory:register", "show the objects of a running node and its object store's usage"),
    "logs": Command("tray._cli.logs:register", "print the log files of the cluster's workers"),
    "timeline": Command("tray._cli.timeline:register",
                        "write the cluster's recent tasks and actor calls as a Chrome trace"),
    "list": Command("tray._cli.state:register", "list the cluster's actors, tasks, objects, nodes, workers, jobs, ..."),
    "summary": Command("tray._cli.state:register", "summarize the cluster's tasks, actors or objects"),
    "serve": Command("tray.serve._cli:register", "run and manage Serve applications"),
    "debug": Command("tray.debug._cli:register", "attach to tasks paused at breakpoint() in the cluster"),
    "job": Command("tray.job_submission._cli:register", "submit, watch and stop jobs through the dashboard"),
    "dashboard": Command("tray.dashboard._cli:register", "print the URL of this machine's cluster dashboard"),
}
"""Every ``tray`` command, in ``tray --help``'s order."""


def get_version() -> str:
    """The installed distribution's version, or ``tray.__version__`` when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tray")
    except PackageNotFoundError:
        import tray

        return str(getattr(tray, "__version__", "unknown"))


def register_version(sub: argparse._SubParsersAction) -> None:
    """``tray version``."""
    p = sub.add_parser("version", help=COMMANDS["version"].help, description="Print tray's version.")
    p.set_defaults(func=_print_version)


def _print_version(args: argparse.Namespace) -> int:
    print(f"tray {get_version()}")
    return 0


def _resolve(target: str) -> Callable[[argparse._SubParsersAction], None]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The root parser. The command ``argv`` names (its first word) gets its full parser,
    from its group's register function; every other command is listed with its help only."""
    parser = argparse.ArgumentParser(
        prog="tray",
        description="tray: a distributed runtime for Python, built as one actor system on trio.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {get_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    if wanted in COMMANDS:
        _resolve(COMMANDS[wanted].register)(sub)
    for name, command in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=command.help, description=command.help[:1].upper() + command.help[1:] + ".")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args))
