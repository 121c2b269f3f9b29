"""The cluster's key-value table (Ray's ``ray.experimental.internal_kv``), kept by the control
store on the head and persisted with the rest of its metadata."""

from __future__ import annotations

from typing import Any

from .. import lowlevel

# Ray's names start with an underscore; they are this module's whole interface.


def _text(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} must be str or bytes, got {type(value).__name__}")


def _ask(method: str, namespace: str | bytes | None, *args: Any) -> Any:
    return lowlevel.control_call(method, "" if namespace is None else _text(namespace, "namespace"), *args)


def _internal_kv_initialized() -> bool:
    import tray

    return tray.is_initialized()


def _internal_kv_put(key: str | bytes, value: str | bytes, overwrite: bool = True, *,
                     namespace: str | bytes | None = None) -> bool:
    """Store ``value`` under ``key``; returns whether the key existed already."""
    data = value.encode() if isinstance(value, str) else value
    if not isinstance(data, bytes):
        raise TypeError(f"value must be str or bytes, got {type(value).__name__}")
    return _ask("kv_put", namespace, _text(key, "key"), data, overwrite)


def _internal_kv_get(key: str | bytes, *, namespace: str | bytes | None = None) -> bytes | None:
    return _ask("kv_get", namespace, _text(key, "key"))


def _internal_kv_exists(key: str | bytes, *, namespace: str | bytes | None = None) -> bool:
    return _ask("kv_exists", namespace, _text(key, "key"))


def _internal_kv_del(key: str | bytes, *, del_by_prefix: bool = False, namespace: str | bytes | None = None) -> int:
    """Delete ``key`` (or every key starting with it); returns how many went."""
    return _ask("kv_del", namespace, _text(key, "key"), del_by_prefix)


def _internal_kv_list(prefix: str | bytes, *, namespace: str | bytes | None = None) -> list[bytes]:
    return [k.encode("latin-1") for k in _ask("kv_keys", namespace, _text(prefix, "prefix"))]
