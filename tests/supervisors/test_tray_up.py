"""``tray up examples/services.toml`` as a real process: a crashed child comes back, SIGTERM stops all."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _pump(stream, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_tray_up_restarts_a_crashed_child_and_stops_cleanly_on_a_signal(signum: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tray", "up", "examples/services.toml"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []

    def wait_for(pattern: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if re.search(pattern, line):
                return
        pytest.fail(f"no line matching {pattern!r} within {TIMEOUT_S} s; stderr so far:\n{''.join(seen)}")

    try:
        wait_for(r"started child 'store'")
        wait_for(r"child 'flaky' .* crashed with RuntimeError: flaky: simulated crash")
        wait_for(r"restarted child 'flaky'")
        proc.send_signal(signum)
        rc = proc.wait(TIMEOUT_S)
        reader.join(TIMEOUT_S)
        while (line := lines.get_nowait()) is not None:
            seen.append(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(seen)
    assert rc == 0, log
    assert "Traceback" in log and "simulated crash" in log  # the crash is logged with its traceback
    assert f"received {signal.Signals(signum).name}" in log and "shut down cleanly" in log
    stops = re.findall(r"stopped child '(\w+)'", log)
    assert stops == ["sink", "source", "pipeline", "flaky", "greeter", "store"], log


def test_tray_up_exits_non_zero_when_the_root_gives_up(tmp_path: Path) -> None:
    config = tmp_path / "fragile.toml"
    config.write_text(
        'strategy = "one_for_one"\nintensity = 0\n'
        '[[children]]\nid = "flaky"\nstart = "services:Flaky"\nkwargs = { crash_after = 0.0 }\nmax_concurrency = 2\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "examples")}
    r = subprocess.run([sys.executable, "-m", "tray", "up", str(config)], capture_output=True, text=True,
                       timeout=TIMEOUT_S, env=env)
    assert r.returncode == 1, r.stderr
    assert "more than 0 restart(s) within 5.0 s" in r.stderr
