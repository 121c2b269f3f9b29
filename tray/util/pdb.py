"""Ray's ``ray.util.pdb``: ``set_trace()`` and ``post_mortem()`` for remote tasks and actors.

A thin face over the debugger library (``tray.debug``), which sits above ``util`` in the
layer map and is imported by name when first used. ``breakpoint()`` in a task does the same
as ``set_trace()``; both stay the plain pdb in a driver.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["post_mortem", "set_trace"]

DEBUGGER = "tray.debug"


def _debugger() -> Any:
    return importlib.import_module(DEBUGGER)


def set_trace(breakpoint_uuid: str | None = None) -> None:
    """Stop the calling frame in the debugger: in a worker, until ``tray debug`` attaches."""
    _debugger().set_trace(frame=sys._getframe(1), breakpoint_uuid=breakpoint_uuid)


def post_mortem() -> None:
    """Debug the exception being handled where it was raised (call it in an ``except`` block)."""
    _debugger().post_mortem()
