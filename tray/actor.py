"""Ray's ``ray.actor`` names: the class ``@tray.remote`` makes of a class, its handles and
their methods (for ``isinstance`` checks and type hints)."""

from .core import ActorClass, ActorHandle, ActorMethod

__all__ = ["ActorClass", "ActorHandle", "ActorMethod"]

from ._meta import fixup_module_metadata as _fixup  # noqa: E402

_fixup(__name__, globals())
