"""What keeps an idle worker small: the handshake's MAC without OpenSSL, and standard
modules a worker imports on first use (``tray._deferred``)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import textwrap

from hypothesis import given
from hypothesis import strategies as st

import tray
from tray.transport._mac import compare_digest, hmac_sha256


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_mac_is_hmac_sha256(key: bytes, msg: bytes) -> None:
    expected = hmac.new(key, msg, hashlib.sha256).digest()
    assert hmac_sha256(key, msg) == expected
    assert compare_digest(hmac_sha256(key, msg), expected)
    assert not compare_digest(hmac_sha256(key, msg), bytes(32) if expected != bytes(32) else b"\1" * 32)


def _run(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_deferred_module_imports_on_first_use() -> None:
    out = _run("""
        import sys
        from tray._deferred import defer
        assert "csv" not in sys.modules and "xmlrpc" not in sys.modules
        defer("csv", "xmlrpc", "sys")  # sys is imported already: left alone
        import csv, xmlrpc
        assert type(sys.modules["csv"]).__name__ == "_Deferred" and "_csv" not in sys.modules
        assert csv.list_dialects()  # first use: the real module, here and in sys.modules
        assert type(sys.modules["csv"]).__name__ == "module" and csv.Error is sys.modules["csv"].Error
        import xmlrpc.client  # a submodule of a deferred package lands on the real package too
        assert sys.modules["xmlrpc"].client is xmlrpc.client and xmlrpc.client.Fault
        from csv import QUOTE_ALL
        print(QUOTE_ALL, type(sys.modules["sys"]).__name__)
    """)
    assert out == "1 module"


def test_deferred_module_used_from_many_threads_at_once() -> None:
    out = _run("""
        import sys, threading
        from tray._deferred import defer
        defer("csv", "xmlrpc")
        import csv, xmlrpc
        go, got = threading.Barrier(8), []
        def use():
            go.wait()
            got.append((csv.QUOTE_ALL, xmlrpc.__path__ is not None))
        threads = [threading.Thread(target=use) for _ in range(8)]
        [t.start() for t in threads]
        [t.join(30) for t in threads]
        print(got == [(1, True)] * 8, type(sys.modules["csv"]).__name__)
    """)
    assert out == "True module"


def test_idle_worker_defers_openssl() -> None:
    """An idle actor's worker has not loaded ssl or hashlib (OpenSSL); using them there works."""

    @tray.remote(num_cpus=0)
    class Probe:
        def loaded(self) -> list[str]:
            return [m for m in ("ssl", "hashlib", "hmac", "_ssl", "_hashlib")
                    if m in sys.modules and type(sys.modules[m]).__name__ != "_Deferred"]

        def digest(self) -> str:
            import hashlib

            return hashlib.sha256(b"x").hexdigest()

    tray.init(num_cpus=1)
    try:
        p = Probe.remote()  # type: ignore[attr-defined]
        assert tray.get(p.loaded.remote(), timeout=60) == []
        assert tray.get(p.digest.remote(), timeout=60) == hashlib.sha256(b"x").hexdigest()
        assert "hashlib" in tray.get(p.loaded.remote(), timeout=60)
    finally:
        tray.shutdown()
