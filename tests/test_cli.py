"""The CLI: ``python -m tray`` and the ``tray`` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tray._cli import get_version, main


def test_version_is_known() -> None:
    assert get_version() and get_version() != "unknown"


def test_python_m_tray_version() -> None:
    r = subprocess.run([sys.executable, "-m", "tray", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"tray {get_version()}"


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_console_script_version(args: list[str]) -> None:
    script = Path(sys.executable).parent / ("tray.exe" if sys.platform == "win32" else "tray")
    if not script.exists():
        pytest.skip(f"no console script at {script} (package not installed in this environment)")
    r = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"tray {get_version()}"


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"tray {get_version()}"
    assert main([]) == 0  # no subcommand: help, success
    assert "usage: tray" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
