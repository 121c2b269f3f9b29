"""The IDE flow: ``breakpoint()`` waits for a Debug Adapter Protocol client (VS Code, PyCharm)
through debugpy, listed in the cluster's KV table with the host:port to attach to.

Chosen per worker with ``TRAY_DEBUGGER=debugpy``, or for the whole cluster while ``tray debug
--debugpy`` runs. The adapter runs inside the worker (no extra process to leak); it listens
once per worker, on loopback unless ``TRAY_DEBUGGER_EXTERNAL=1``.
"""

from __future__ import annotations

from types import FrameType
from typing import Any

from tray import lowlevel

from ._session import announce, bind_address, withdraw

_listening: tuple[str, int] | None = None  # this worker's adapter: (advertised host, port)


def _debugpy() -> tuple[Any, str, int]:
    global _listening
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


def breakpoint(frame: FrameType) -> None:
    """Wait for an IDE, then stop ``frame`` in it."""
    debugpy, host, port = _debugpy()
    record = announce("debugpy", frame, None, host, port)
    try:
        debugpy.wait_for_client()
    finally:
        withdraw(record)
    _stop_at(debugpy, frame)

