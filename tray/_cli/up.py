"""``tray up services.toml``: run a supervision tree as a long-running service.

Logs every start, crash (with its traceback) and restart to stderr; SIGINT or SIGTERM
stops the tree in reverse start order and exits 0 (:func:`tray.supervisors._service.serve`).
A bad config exits 2 with a message naming the file, the child and the field; a tree that
fails to start or gives up (restart intensity exceeded at the root) exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..supervisors import ConfigError, load_config
from . import COMMANDS
from ._output import reports

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def register(sub: argparse._SubParsersAction) -> None:
    """``tray up``."""
    p = sub.add_parser(
        "up",
        help=COMMANDS["up"].help,
        description="Start the supervision tree described by a TOML supervision config and keep it up;"
        " SIGINT or SIGTERM shuts it down in reverse start order.",
    )
    p.add_argument("config", help="a supervision config (TOML), e.g. services.toml")
    p.add_argument("--log-level", default="INFO", choices=LEVELS)
    p.set_defaults(func=run)


@reports("up", usage=(ConfigError,), prefix="error: ")
def run(args: argparse.Namespace) -> int:
    """Load the config, run its tree, return the exit status."""
    import trio

    from ..supervisors._service import log, serve

    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), format=LOG_FORMAT,
                        stream=sys.stderr)
    spec = load_config(args.config)
    log.info("starting %s (strategy %s)", args.config, spec.strategy)
    return trio.run(serve, spec)
