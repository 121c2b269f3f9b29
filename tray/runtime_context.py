"""Ray's ``ray.runtime_context`` names: the :class:`RuntimeContext` that
``tray.get_runtime_context()`` returns (for ``isinstance`` checks and type hints)."""

from .core import RuntimeContext, get_runtime_context

__all__ = ["RuntimeContext", "get_runtime_context"]

from ._meta import fixup_module_metadata as _fixup  # noqa: E402

_fixup(__name__, globals())
