"""tray.transport sits on the kernel (and the bottom floor: exceptions, _config) only, and the kernel
loads it only when asked to."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tray.transport

PKG = Path(tray.transport.__file__).parent


def test_transport_imports_only_the_kernel_and_exceptions() -> None:
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                top = (node.module or node.names[0].name).split(".")[0]
                assert top in ("actors", "exceptions", "_config"), f"{path.name} imports tray.{node.module}"
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n == "tray" or n.startswith("tray.") for n in names), path.name


def test_the_kernel_does_not_load_the_transport_until_a_system_uses_the_network() -> None:
    code = (
        "import sys, trio, tray\n"
        "async def main():\n"
        "    async with tray.ActorSystem() as s:\n"
        "        assert 'tray.transport' not in sys.modules\n"
        "    async with tray.ActorSystem(address='tcp://127.0.0.1:0', token='t') as s:\n"
        "        assert 'tray.transport' in sys.modules and s.address.startswith('tcp://127.0.0.1:')\n"
        "trio.run(main)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
