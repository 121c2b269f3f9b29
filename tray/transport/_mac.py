"""HMAC-SHA256 for the connection handshake, without OpenSSL.

``hmac`` and ``hashlib`` load OpenSSL's libcrypto (about 3.5 MiB resident) into every
process that imports them; a worker only ever needs one keyed hash per connection, so
it uses CPython's built-in SHA-256 (``_sha256``) and RFC 2104's construction instead.
Where that module is missing (another Python), the standard library's is used.
"""

from __future__ import annotations

try:
    from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is, sans OpenSSL
    from _sha256 import sha256
except ImportError:  # pragma: no cover - not CPython: the standard modules
    import hashlib
    import hmac

    compare_digest = hmac.compare_digest

    def hmac_sha256(key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, hashlib.sha256).digest()

else:
    _BLOCK = 64  # SHA-256's block size in bytes
    _IPAD = bytes(x ^ 0x36 for x in range(256))
    _OPAD = bytes(x ^ 0x5C for x in range(256))

    def hmac_sha256(key: bytes, msg: bytes) -> bytes:
        """RFC 2104's HMAC with SHA-256: ``hmac.new(key, msg, hashlib.sha256).digest()``."""
        if len(key) > _BLOCK:
            key = sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        inner = sha256(key.translate(_IPAD) + msg).digest()
        return sha256(key.translate(_OPAD) + inner).digest()


__all__ = ["compare_digest", "hmac_sha256"]
