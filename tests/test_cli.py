"""The CLI: ``python -m tray`` and the ``tray`` console script."""

from __future__ import annotations

import argparse
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


# ------------------------------------------------------------------ the command table


def test_every_row_of_the_table_registers_its_command() -> None:
    """Each command's register function adds that command, with a func to run; the root
    parser builds the full parser of the command it runs and lists the others."""
    from tray._cli import COMMANDS, build_parser

    for name in COMMANDS:
        parser = build_parser([name])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert set(sub.choices) == set(COMMANDS)
        assert sub.choices[name].get_default("func") is not None, name


def test_help_imports_no_command_module() -> None:
    """``tray --help`` comes from the table alone: no command group is imported."""
    code = ("import sys\nfrom tray._cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('tray._cli.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert "microbenchmark" in r.stdout and "summary" in r.stdout


def test_a_command_registered_by_one_row(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """What a library does to add its group: one row naming its register function."""
    import tray._cli as cli

    def register(sub: argparse._SubParsersAction) -> None:
        p = sub.add_parser("hello", description="Say hello.")
        p.add_argument("--to", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.to}") or 0)

    monkeypatch.setitem(sys.modules, "tray_probe_commands", type(sys)("tray_probe_commands"))
    sys.modules["tray_probe_commands"].register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(cli.COMMANDS, "hello", cli.Command("tray_probe_commands:register", "say hello"))
    assert main(["hello", "--to", "tray"]) == 0
    assert capsys.readouterr().out == "hello tray\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "say hello" in capsys.readouterr().out


# ------------------------------------------------------------------ output and errors


def test_table_aligns_cuts_and_strips() -> None:
    from tray._cli._output import table

    text = table(["A", "B", "C"], [["x", None, "long text"], ["yyyy", {"k": 1}, ""]], max_cell=8)
    assert text.splitlines() == ["A     B         C", "x               long ...", 'yyyy  {"k": 1}']


@pytest.mark.parametrize(("raised", "code"), [
    (LookupError("no actor named 'x'"), 1), (ConnectionError("no cluster"), 1), (ValueError("bad filter"), 2),
    (OSError(), 1)])
def test_reports_turns_expected_errors_into_a_line_and_a_status(raised: Exception, code: int,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tray._cli._output import reports

    @reports("probe", usage=(ValueError,))
    def run(args: argparse.Namespace) -> int:
        raise raised

    assert run(argparse.Namespace()) == code
    err = capsys.readouterr().err
    assert err == f"tray probe: {str(raised) or type(raised).__name__}\n"


def test_reports_lets_unexpected_errors_through() -> None:
    from tray._cli._output import reports

    @reports("probe")
    def run(args: argparse.Namespace) -> int:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run(argparse.Namespace())
