"""Standard modules a worker process imports only when it first uses them.

Worker start pulls in libraries (trio) that import modules an idle worker never touches:
``ssl`` (with OpenSSL's libssl), ``hashlib`` and ``hmac`` (libcrypto): several MiB resident in every
worker. :func:`defer` puts a stand-in in ``sys.modules`` that imports the real module on
its first attribute access and then behaves as it (its namespace copied in), so code
that uses them still works, paying the import on first use instead of at start.
Only worker processes defer (``tray/__init__.py`` decides); a driver imports as usual.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

_lock = threading.Lock()  # guards swapping the stand-in out of sys.modules, never held while importing


class _Deferred(types.ModuleType):
    """Stands in for a module not imported yet; the first attribute looked up imports it."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        with _lock:
            if sys.modules.get(name) is self:
                del sys.modules[name]
        try:
            # importlib's own locks make a second thread wait for the first one's import
            real = importlib.import_module(name)
        except BaseException:
            with _lock:
                sys.modules.setdefault(name, self)  # as it was: the next use tries again
            raise
        # later lookups through importers' references find it here, without this hook
        self.__dict__.update(real.__dict__)
        self.__dict__["_tray_real"] = real
        return getattr(real, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        """What is set on the stand-in (``import pkg.sub`` sets ``sub`` on the parent it
        looked up) is set on the real module too, once there is one."""
        super().__setattr__(attr, value)
        real = self.__dict__.get("_tray_real")
        if real is not None:
            setattr(real, attr, value)


def defer(*names: str) -> None:
    """Defer importing each of ``names`` that is not imported yet (see the module docstring)."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = _Deferred(name)
