"""Real worker processes for transport tests (a module of its own: test files import it,
and a name other than ``conftest`` cannot clash with another folder's conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "test-cluster-token"


class Workers:
    """Starts ``python -m tray.transport._worker`` processes; stops every one at teardown."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tray-"))
        self.procs: list[subprocess.Popen] = []

    def start(self, address: str | None = None, heartbeat: float = 1.0) -> tuple[subprocess.Popen, str]:
        address = address or f"unix://{self.dir}/w{len(self.procs)}.sock"
        env = dict(os.environ, TRAY_CLUSTER_TOKEN=TOKEN, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
        p = subprocess.Popen(
            [
                sys.executable, "-m", "tray.transport._worker", address,
                "--import", "remote_actors", "--heartbeat", str(heartbeat),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.procs.append(p)
        line = p.stdout.readline().decode()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            p.kill()
            raise RuntimeError(f"worker failed to start: {line!r}")
        return p, line.split()[1]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.stdin.close()  # type: ignore[union-attr]
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
