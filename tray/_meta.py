"""Public names report their public home (trio's ``fixup_module_metadata``).

``tray.ObjectRef`` is defined in ``tray.core._objects``; without this its repr, tracebacks,
docs and pickles would name the private module, which may move. Each public package calls
:func:`fixup_module_metadata` on its ``__all__`` once it has imported them.
"""

from __future__ import annotations

import types
from typing import Any


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Set ``__module__`` of the classes and functions ``namespace["__all__"]`` names (and of
    their methods) to ``module_name`` when they were defined in a private module below it."""
    seen: set[int] = set()

    def fix(qualname: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if not isinstance(mod, str) or not mod.startswith("tray.") or "._" not in mod + ".":
            return
        if not any(part.startswith("_") for part in mod.split(".")):
            return  # already public where it is defined
        obj.__module__ = module_name
        if isinstance(obj, type):
            obj.__qualname__ = qualname
            for attr_name, attr in vars(obj).items():
                if isinstance(attr, (types.FunctionType, type)) and not attr_name.startswith("__"):
                    fix(f"{qualname}.{attr_name}", attr)

    for name in namespace["__all__"]:
        obj = namespace.get(name)
        if isinstance(obj, (type, types.FunctionType)) and obj.__name__ == name:
            fix(name, obj)
