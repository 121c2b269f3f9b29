"""``tray microbenchmark``: a few cheap lines in ``--quick`` mode, their printed format and JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tray._cli import main
from tray._cli.perf import ACTOR_START_NAME, COLD_NAME, FLOOR_NAME

LINES = {
    FLOOR_NAME: "per second",
    "single client get calls (Plasma Store)": "per second",
    "single client put calls (Plasma Store)": "per second",
    "idle actor worker RSS": "MiB",
    "node idle CPU with 4 idle actors": "% of a core",
    "in-process actor ask": "per second",
    COLD_NAME: "s",  # its first, untimed run writes bytecode caches into a temporary PYTHONPYCACHEPREFIX
    ACTOR_START_NAME: "s",
}
PG = "placement group create/removal"
SYNC = "single client tasks sync"


def test_microbenchmark_quick(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    pattern = "|".join(re.escape(name) + "$" for name in [*LINES, PG, SYNC])
    r = subprocess.run(
        [sys.executable, "-m", "tray", "microbenchmark", "--quick", "--filter", pattern, "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    printed = r.stdout.splitlines()
    assert printed[0].startswith("backend: tray ")
    for name, unit in LINES.items():
        assert any(re.fullmatch(re.escape(f"{name} {unit} ") + r"[\d.]+ \+- [\d.]+", ln) for ln in printed), name
    # a sync line says its share of the raw floor, measured in the same run
    assert any(re.fullmatch(re.escape(f"{SYNC} per second ") + r"[\d.]+ \+- [\d.]+ \([\d.]+% of the floor\)", ln)
               for ln in printed), printed
    # placement groups are measured once tray has them, and skipped (saying why) until then
    assert any(ln == f"{PG} skipped: needs placement groups" or ln.startswith(f"{PG} per second ") for ln in printed)

    data = json.loads(out.read_text())
    assert data["backend"] == "tray" and data["quick"] is True and data["machine"]["nproc"] >= 1
    got = {line["name"]: line for line in data["results"]}
    assert set(got) == {*LINES, PG, SYNC}
    assert got[SYNC]["floor_share"] == pytest.approx(got[SYNC]["mean"] / got[FLOOR_NAME]["mean"])
    for name, unit in LINES.items():
        line = got[name]
        assert line["unit"] == unit and line["values"] and line["mean"] >= 0 and line["sd"] >= 0
        if unit != "% of a core":
            assert line["mean"] > 0
    assert len(got["idle actor worker RSS"]["values"]) == 4  # one per idle actor's worker
    assert set(got[COLD_NAME]["phases"]) == {"import", "init", "first_task", "shutdown", "total"}


def test_microbenchmark_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["microbenchmark", "--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    assert "--filter" in help_text and "--json" in help_text and "--quick" in help_text
