"""Everything a newcomer copies from runs: each example, and each ```python block of the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.py"))


def _run(args: list[str], what: str) -> None:
    try:
        r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:  # subprocess.run kills the child on timeout
        out = b"".join(x if isinstance(x, bytes) else x.encode() for x in (e.stdout, e.stderr) if x)
        pytest.fail(f"{what} did not finish within {TIMEOUT_S} s\n{out.decode(errors='replace')}")
    assert r.returncode == 0, f"{what} exited {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example(path: Path) -> None:
    """``examples/foo.py`` runs as a script; ``examples/test_foo.py`` passes under pytest."""
    if path.name.startswith("test_"):
        _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)], f"pytest {path.name}")
    else:
        _run([sys.executable, str(path)], f"python examples/{path.name}")


def _readme_python_blocks() -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of each ```python block in README.md."""
    blocks: list[tuple[int, str]] = []
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start: int | None = None
    body: list[str] = []
    for i, line in enumerate(lines, 1):
        if start is None:
            if re.fullmatch(r"\s*```\s*python\s*", line):
                start, body = i, []
        elif re.fullmatch(r"\s*```\s*", line):
            blocks.append((start, "\n".join(body) + "\n"))
            start = None
        else:
            body.append(line)
    return blocks


README_BLOCKS = _readme_python_blocks()


def test_readme_has_python_blocks() -> None:
    assert README_BLOCKS, "README.md has no ```python block; this check would be vacuous"


@pytest.mark.parametrize("code", [c for _, c in README_BLOCKS], ids=[f"README.md:{n}" for n, _ in README_BLOCKS])
def test_readme_block_runs(code: str) -> None:
    _run([sys.executable, "-c", code], "README block")
