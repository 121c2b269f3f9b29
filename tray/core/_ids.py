"""Ray's ID objects (``JobID``, ``NodeID``, ``TaskID``, ``ActorID``, ``WorkerID``,
``PlacementGroupID``): what ``RuntimeContext``'s properties return, with ``.hex()`` and
``.binary()``. tray's ids are hex strings; an ID also equals its hex string, so code that
compared the strings keeps working."""

from __future__ import annotations

from typing import Any


class BaseID:
    """An id: its hex string, its bytes, equal to another of its kind with the same hex."""

    __slots__ = ("_hex",)

    def __init__(self, id_hex: str | bytes) -> None:
        if isinstance(id_hex, bytes):
            id_hex = id_hex.hex()
        if not isinstance(id_hex, str):
            raise TypeError(f"{type(self).__name__} takes a hex str or bytes, got {type(id_hex).__name__}")
        self._hex = id_hex

    @classmethod
    def from_hex(cls, id_hex: str) -> BaseID:
        return cls(id_hex)

    @classmethod
    def from_binary(cls, id_bytes: bytes) -> BaseID:
        return cls(id_bytes)

    @classmethod
    def nil(cls) -> BaseID:
        return cls("")

    def is_nil(self) -> bool:
        return not self._hex

    def hex(self) -> str:
        return self._hex

    def binary(self) -> bytes:
        try:
            return bytes.fromhex(self._hex)
        except ValueError:  # an id that is not hex (a name-like one): its text
            return self._hex.encode()

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._hex})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self._hex
        return type(other) is type(self) and other._hex == self._hex

    def __hash__(self) -> int:
        return hash(self._hex)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._hex,))


class JobID(BaseID):
    __slots__ = ()


class NodeID(BaseID):
    __slots__ = ()


class TaskID(BaseID):
    __slots__ = ()


class ActorID(BaseID):
    __slots__ = ()


class WorkerID(BaseID):
    __slots__ = ()


class PlacementGroupID(BaseID):
    __slots__ = ()
