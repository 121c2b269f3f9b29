"""tray's distributed debugger: ``breakpoint()`` in a task or actor, attached from any shell
(``tray debug``) or IDE (``tray debug --debugpy``).

Workers run with ``PYTHONBREAKPOINT=tray.debug.set_trace``, so this package is imported only
when a worker first stops. A stop opens a pdb session on a socket (loopback unless
``TRAY_DEBUGGER_EXTERNAL=1``), lists it in the cluster's KV table, and waits for a client that
proves the cluster token; ``tray debug`` lists the sessions and attaches. With
``_system_config={"post_mortem": True}`` (or ``TRAY_DEBUG_POST_MORTEM=1``) a task that raises
waits at the raising frame the same way, for ``TRAY_DEBUG_POST_MORTEM_TIMEOUT_S`` (300 s).
In a driver, both stay the plain local pdb.
"""

from __future__ import annotations

import sys as _sys
from types import FrameType as _Frame

import tray as _tray
from tray import lowlevel as _lowlevel

__all__ = ["post_mortem", "set_trace"]


def _in_worker() -> bool:
    """A worker's breakpoint goes remote; a driver's (or a process without tray) stays local."""
    return _tray.is_initialized() and not _lowlevel.runtime_info().is_driver


def _debugger() -> str:
    """"pdb" or "debugpy": the worker's setting, or what ``tray debug --debugpy`` asked the cluster for."""
    from . import _registry

    if _lowlevel.setting("debugger") == "debugpy":
        return "debugpy"
    return _registry.get_mode(_lowlevel.control_call) or "pdb"


def set_trace(*, frame: _Frame | None = None, breakpoint_uuid: str | None = None) -> None:
    """Stop the calling frame (or ``frame``) in the debugger: in a worker, a session that waits
    for ``tray debug``; in a driver, the plain pdb. ``breakpoint_uuid`` (Ray's name) marks the
    session as one a ``remote`` step follows."""
    frame = frame if frame is not None else _sys._getframe(1)
    if not _in_worker():
        import pdb

        pdb.Pdb().set_trace(frame)
        return
    if _debugger() == "debugpy":
        from . import _debugpy

        _debugpy.breakpoint(frame)
        return
    from ._pdb import RemotePdb

    RemotePdb(follow=breakpoint_uuid).set_trace(frame)


def post_mortem(exc: BaseException | None = None) -> None:
    """Debug where ``exc`` (default: the exception being handled) was raised: in a worker, wait
    for ``tray debug`` for the post-mortem timeout, then return; in a driver, the plain pdb.
    (Always pdb: an IDE's own exception breakpoints serve it better than a frame already left.)"""
    if exc is None:
        exc = _sys.exc_info()[1]
        if exc is None:
            raise ValueError("post_mortem() outside an except block needs the exception to debug")
    if not _in_worker():
        import pdb

        pdb.post_mortem(exc.__traceback__)
        return
    from . import _pdb

    _pdb.post_mortem(exc, _lowlevel.setting("post_mortem_timeout_s"))
