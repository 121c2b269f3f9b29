"""The IDE flow: ``breakpoint()`` waits for a Debug Adapter Protocol client (VS Code, PyCharm)
through debugpy, listed in the cluster's KV table with the host:port to attach to.

Chosen per worker with ``TRAY_DEBUGGER=debugpy``, or for the whole cluster while ``tray debug
--debugpy`` runs. The adapter runs inside the worker (no extra process to leak); it listens
once per worker, on loopback unless ``TRAY_DEBUGGER_EXTERNAL=1``.
"""

from __future__ import annotations

import os
from types import FrameType
from typing import Any

from tray import lowlevel

from ._session import DYNAMIC, announce, bind_address, source_file, withdraw

_listening: tuple[str, int] | None = None  # this worker's adapter: (advertised host, port)


def _debugpy() -> tuple[Any, str, int]:
    global _listening
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # its frozen-modules warning is not the user's
    debugpy = lowlevel.require("debugpy", "default")
    if _listening is None:
        bind, host = bind_address()
        _bound, port = debugpy.listen((bind, 0), in_process_debug_adapter=True)
        _listening = (host, int(port))
    return debugpy, *_listening


def _stop_at(debugpy: Any, frame: FrameType) -> None:
    """Suspend in ``frame`` (the user's), not in this module's frame as ``debugpy.breakpoint`` would."""
    try:
        from debugpy.server.api import _settrace
    except ImportError:  # another debugpy layout: stop here, one step out of the user's code
        debugpy.breakpoint()
        return
    _settrace(suspend=True, trace_only_current_thread=True, patch_multiprocessing=False, stop_at_frame=frame)


def _map_dynamic_code(frame: FrameType) -> None:
    """A driver script's functions run as ``<dynamic-code>`` (they travel by value): tell the
    debugger that code is the script's, line for line, so the IDE opens the file (as debugpy
    does for notebook cells). Best effort: without it the IDE shows the frames sourceless."""
    path = source_file(frame)
    if frame.f_code.co_filename != DYNAMIC or path == DYNAMIC:
        return
    try:
        from _pydevd_bundle.pydevd_source_mapping import SourceMappingEntry
        from pydevd import get_global_debugger

        with open(path, encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        entry = SourceMappingEntry(1, lines, 1, DYNAMIC)
        entry.source_filename = path  # what the IDE is told (debugpy's own API sets it so too)
        get_global_debugger().source_mapping.set_source_mapping(path, [entry])
    except Exception:  # noqa: BLE001 - another debugpy, or an unreadable file: frames stay sourceless
        pass


def breakpoint(frame: FrameType) -> None:
    """Wait for an IDE, then stop ``frame`` in it."""
    debugpy, host, port = _debugpy()
    _map_dynamic_code(frame)
    record = announce("debugpy", frame, None, host, port)
    try:
        debugpy.wait_for_client()
    finally:
        withdraw(record)
    _stop_at(debugpy, frame)

