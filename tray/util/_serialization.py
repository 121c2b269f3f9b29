"""Ray's custom serializers (``register_serializer``) and its serializability inspector
(``inspect_serializability``).

A registered serializer is a reducer in :mod:`copyreg`'s table, which every pickler tray
uses honours; like Ray's it belongs to the process that registers it (a worker registers its
own), while the deserializer travels with each serialized value.
"""

from __future__ import annotations

import copyreg
import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO

import cloudpickle

_registered: dict[type, Any] = {}  # cls -> the reducer we put in copyreg's table


def _rebuild(deserializer: Callable[[Any], Any], state: Any) -> Any:
    return deserializer(state)


def register_serializer(cls: type, *, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]) -> None:
    """Serialize instances of ``cls`` as ``serializer(obj)`` (which must be serializable) and
    rebuild them with ``deserializer(that)``, in this process from now on."""
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer takes a class, got {cls!r}")
    if not callable(serializer) or not callable(deserializer):
        raise TypeError("serializer and deserializer must be callables")

    def reduce(obj: Any) -> tuple[Any, tuple[Any, Any]]:
        return _rebuild, (deserializer, serializer(obj))

    copyreg.pickle(cls, reduce)
    _registered[cls] = reduce


def deregister_serializer(cls: type) -> None:
    """Undo :func:`register_serializer` for ``cls`` (ValueError if none is registered)."""
    reduce = _registered.pop(cls, None)
    if reduce is None:
        raise ValueError(f"no serializer is registered for {cls!r}")
    if copyreg.dispatch_table.get(cls) is reduce:
        del copyreg.dispatch_table[cls]


class FailureTuple(NamedTuple):
    """An object that cannot be serialized, its name, and the object it was found in."""

    obj: Any
    name: str
    parent: Any

    def __repr__(self) -> str:
        return f"FailTuple({self.name} [obj={self.obj}, parent={self.parent}])"

    def __hash__(self) -> int:  # by identity: the objects may be unhashable (a list holding a lock)
        return hash((id(self.obj), self.name, id(self.parent)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FailureTuple) and (self.obj is other.obj and self.name == other.name
                                                     and self.parent is other.parent)


def _serializable(obj: Any) -> tuple[bool, str]:
    try:
        cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - any failure is what we report
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def _members(obj: Any) -> dict[str, Any]:
    """What an object carries that may be the culprit: a function's globals and closure
    variables it uses, an object's attributes."""
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        fn = obj.__func__ if inspect.ismethod(obj) else obj
        found = inspect.getclosurevars(fn)
        return {**found.globals, **found.nonlocals}
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return dict(state)
    return {}


def inspect_serializability(base_obj: Any, name: str | None = None, depth: int = 3,
                            print_file: TextIO | None = None) -> tuple[bool, set[FailureTuple]]:
    """Whether ``base_obj`` serializes; when not, look into what it holds (a function's
    globals and closure, an object's attributes) down to ``depth`` levels to name the
    members that don't, printing the search as a tree. Returns ``(ok, failures)``."""
    out = print_file or sys.stdout
    failures: set[FailureTuple] = set()

    def visit(obj: Any, label: str, parent: Any, level: int) -> bool:
        pad = "    " * (depth - level)
        ok, why = _serializable(obj)
        if ok:
            return True
        print(f"{pad}!!! FAIL serialization: {why}", file=out)
        found = False
        if level > 0:
            for member_name, member in _members(obj).items():
                if not _serializable(member)[0]:
                    print(f"{pad}    Serializing {member_name!r} {member}...", file=out)
                    found = True
                    visit(member, member_name, obj, level - 1)
        if not found:
            failures.add(FailureTuple(obj, label, parent))
        return False

    label = name or str(base_obj)
    print(f"Checking Serializability of {base_obj!r} ({label})", file=out)
    ok = visit(base_obj, label, None, depth)
    if not ok:
        print(f"Found {len(failures)} non-serializable object(s): "
              + ", ".join(f.name for f in failures), file=out)
    return ok, failures
