"""Ray's ``ray.actor`` names: the class ``@tray.remote`` makes of a class, its handles and
their methods (for ``isinstance`` checks and type hints), and ``exit_actor()``."""

from .core import ActorClass, ActorHandle, ActorMethod
from .core._exit import exit_actor

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor"]

from ._meta import fixup_module_metadata as _fixup  # noqa: E402

_fixup(__name__, globals())
