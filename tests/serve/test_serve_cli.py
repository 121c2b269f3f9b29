"""``tray serve run | deploy | status | shutdown``, run as a user would, in subprocesses.

Each test gets its own TMPDIR, so ``address="auto"`` and ``tray stop`` find only its cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import free_port

APP = '''
from starlette.requests import Request
from tray import serve

@serve.deployment(ray_actor_options={"num_cpus": 0})
class Hello:
    def __init__(self, who="world"):
        self.who = who
        self.greeting = "hello"

    def reconfigure(self, cfg):
        self.greeting = cfg["greeting"]

    def __call__(self, request: Request) -> str:
        return f"{self.greeting} {self.who}"

app = Hello.bind("cli")
'''


@pytest.fixture
def cli_env(tmp_path):
    (tmp_path / "myapp.py").write_text(APP)
    e = {**os.environ, "TMPDIR": str(tmp_path)}
    for var in ("TRAY_CLUSTER_TOKEN", "TRAY_ADDRESS"):
        e.pop(var, None)
    yield e
    subprocess.run([sys.executable, "-m", "tray", "stop", "--grace", "5"], env=e, cwd=tmp_path, capture_output=True,
                   timeout=60)


def tray_cli(env, cwd, *args, timeout=120, check=True):
    r = subprocess.run([sys.executable, "-m", "tray", *args], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"tray {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def test_serve_run_serves_until_ctrl_c(cli_env, tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tray", "serve", "run", "myapp:app", "--port", str(port),
                             "--route-prefix", "/hi"], env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        assert any(f"at http://127.0.0.1:{port}/hi" in ln for ln in lines), (lines, proc.stderr.read())
        assert httpx.get(f"http://127.0.0.1:{port}/hi", timeout=30).text == "hello cli"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "shut down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_deploy_status_shutdown_on_a_running_cluster(cli_env, tmp_path) -> None:
    head_port, http_port = free_port(), free_port()
    tray_cli(cli_env, tmp_path, "start", "--head", "--port", str(head_port), "--num-cpus", "2")
    (tmp_path / "serve.yaml").write_text(f"""
http_options:
  host: 127.0.0.1
  port: {http_port}
applications:
  - name: greeter
    route_prefix: /greet
    import_path: myapp:app
    deployments:
      - name: Hello
        num_replicas: 2
        user_config:
          greeting: howdy
""")
    out = tray_cli(cli_env, tmp_path, "serve", "deploy", "serve.yaml").stdout
    assert "Deployed app 'greeter'" in out
    assert httpx.get(f"http://127.0.0.1:{http_port}/greet", timeout=30).text == "howdy cli"
    status = tray_cli(cli_env, tmp_path, "serve", "status").stdout
    assert "greeter" in status and "RUNNING" in status and "RUNNING: 2" in status
    tray_cli(cli_env, tmp_path, "serve", "shutdown", "-y")
    status = tray_cli(cli_env, tmp_path, "serve", "status").stdout
    assert "greeter" not in status


def test_bad_import_path_and_bad_config_fail_clearly(cli_env, tmp_path) -> None:
    r = tray_cli(cli_env, tmp_path, "serve", "run", "myapp:nope", check=False)
    assert r.returncode == 1 and "has no attribute 'nope'" in r.stderr
    r = tray_cli(cli_env, tmp_path, "serve", "run", "no_such_module:app", check=False)
    assert r.returncode == 1 and "cannot import module 'no_such_module'" in r.stderr
    (tmp_path / "bad.yaml").write_text("applications:\n  - import_path: myapp:app\n    route_prefix: nope\n")
    r = tray_cli(cli_env, tmp_path, "serve", "deploy", "bad.yaml", check=False)
    assert r.returncode == 1 and "route_prefix must start with" in r.stderr
