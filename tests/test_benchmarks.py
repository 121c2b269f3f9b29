"""Every benchmark script still runs (a tiny ``--quick`` round; numbers are not checked here)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).parent.parent / "benchmarks").glob("bench_*.py"))
COMPARE = Path(__file__).parent.parent / "benchmarks" / "compare_ray.py"


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_benchmark_runs(script):
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "tray" in proc.stdout


def test_compare_ray_without_ray(tmp_path):
    """compare_ray.py runs tray alone when told to, and writes its table and each run's JSON."""
    out = tmp_path / "table.md"
    cmd = [sys.executable, str(COMPARE), "--no-ray", "--quick", "--runs", "1", "--filter", "get calls"]
    cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert table in proc.stdout
    assert "| benchmark | unit | Ray | tray | ratio |" in table
    row = next(ln for ln in table.splitlines() if ln.startswith("| single client get calls (Plasma Store) |"))
    assert row.split("|")[3].strip() == "—" and row.endswith("| n/a |")
    assert (tmp_path / "table-tray-1.json").exists()
    again = subprocess.run([sys.executable, str(COMPARE), "--from-json", str(tmp_path / "table-tray-1.json")],
                           check=False, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert row in again.stdout
