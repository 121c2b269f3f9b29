"""What every ``tray`` command prints the same way: tables, and failures as exit statuses.

A command's ``run(args) -> int`` is wrapped in :func:`reports`, which turns the errors a
command expects (a cluster not found or not answering, bad input) into one line ``tray
COMMAND: why`` on stderr and exit status 1 (2 for the usage errors it names), instead of a
traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Run = Callable[[argparse.Namespace], int]

USAGE = 2  # the exit status of a command given bad arguments (argparse's too)
FAILED = 1


def failed(command: str, why: BaseException | str, code: int = FAILED, prefix: str = "") -> int:
    """Say on stderr why ``tray COMMAND`` failed; return its exit status ``code``."""
    text = why if isinstance(why, str) else (str(why) or type(why).__name__)
    print(f"tray {command}: {prefix}{text}", file=sys.stderr)
    return code


def expected_failures() -> tuple[type[BaseException], ...]:
    """What a command that talks to a cluster may meet and should report in words: a cluster
    not found or gone (LookupError, ConnectionError, OSError), bad input (ValueError), no
    answer in time."""
    import trio

    return (LookupError, ConnectionError, OSError, ValueError, TimeoutError, trio.TooSlowError)


def reports(command: str, usage: tuple[type[BaseException], ...] = (), prefix: str = "") -> Callable[[Run], Run]:
    """Wrap ``run(args) -> int``: the exceptions in ``usage`` exit 2, the expected failures 1,
    each with one line on stderr (``prefix`` goes before the reason)."""

    def wrap(run: Run) -> Run:
        @functools.wraps(run)
        def guarded(args: argparse.Namespace) -> int:
            try:
                return run(args)
            except Exception as exc:
                if usage and isinstance(exc, usage):
                    return failed(command, exc, USAGE, prefix)
                if isinstance(exc, expected_failures()):
                    return failed(command, exc, FAILED, prefix)
                raise

        return guarded

    return wrap


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], max_cell: int | None = None) -> str:
    """Aligned columns, two spaces apart, no trailing blanks. A cell is one line (``None``
    is empty, containers are JSON); with ``max_cell`` a longer one is cut and ends in "...".
    """
    cells = [[str(h) for h in header]] + [[_cell(v, max_cell) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    # strict=False: a row's cells past the header's are not shown
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells)


def _cell(value: Any, max_cell: int | None) -> str:
    if value is None:
        return ""
    text = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else str(value)
    text = " ".join(text.split())  # one line: tracebacks and the like
    return text if max_cell is None or len(text) <= max_cell else text[:max_cell - 3] + "..."
