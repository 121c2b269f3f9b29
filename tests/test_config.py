"""tray._config: one table of every TRAY_* variable and _system_config key, resolved into frozen settings."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tray
from tray import _config
from tray._config import VARS, Settings, env_name, get, resolve, to_env

ROOT = Path(tray.__file__).parent


def test_every_setting_has_one_row_and_every_variable_is_tray_prefixed() -> None:
    assert set(VARS) == {f.name for f in attrs.fields(Settings)}
    names = [v.env for v in VARS.values() if v.env is not None]
    keys = [v.key for v in VARS.values() if v.key is not None]
    assert all(n.startswith("TRAY_") for n in names) and len(set(names)) == len(names)
    assert len(set(keys)) == len(keys)
    assert env_name("cluster_token") == "TRAY_CLUSTER_TOKEN"


def test_defaults_without_environment_or_config() -> None:
    assert resolve({}, env={}) == Settings()
    assert Settings().get_warn_after_s == 30.0 and Settings().memory_usage_threshold == 0.95


def test_system_config_over_environment_over_default() -> None:
    env = {"TRAY_GET_WARN_AFTER_S": "7.5", "TRAY_MEMORY_USAGE_THRESHOLD": "0.8", "TRAY_CLUSTER_TOKEN": "t"}
    s = resolve({"get_warn_after_s": 2}, env=env)
    assert s.get_warn_after_s == 2.0 and s.memory_usage_threshold == 0.8 and s.cluster_token == "t"
    assert s.memory_monitor_refresh_ms == 250  # neither: the default
    assert resolve({"not_a_tray_key": 1}, env={}) == Settings()  # Ray's many other keys are left alone


def test_bad_values_name_their_key_or_variable() -> None:
    with pytest.raises(ValueError, match="get_warn_after_s must be a number of seconds > 0, got True"):
        resolve({"get_warn_after_s": True}, env={})
    with pytest.raises(ValueError, match="TRAY_GET_WARN_AFTER_S must be a number of seconds > 0, got '-1'"):
        resolve({}, env={"TRAY_GET_WARN_AFTER_S": "-1"})
    with pytest.raises(ValueError, match="TRAY_NODE_TIMEOUT_S"):
        resolve({}, env={"TRAY_NODE_TIMEOUT_S": "soon"})
    with pytest.raises(ValueError, match="max_direct_call_object_size must be a number of bytes >= 0"):
        resolve({"max_direct_call_object_size": -1}, env={})
    with pytest.raises(ValueError, match="object_spilling_config must be Ray's spilling config"):
        resolve({"object_spilling_config": "{not json"}, env={})
    with pytest.raises(ValueError, match="no setting named 'nope'"):
        get("nope")


def test_ray_spilling_config_gives_the_directory() -> None:
    config = {"object_spilling_config": '{"type": "filesystem", "params": {"directory_path": ["/tmp/a", "/tmp/b"]}}'}
    assert resolve(config, env={}).object_spilling_directory == "/tmp/a"
    config = {"object_spilling_config": {"type": "filesystem", "params": {"directory_path": "/tmp/c"}}}
    assert resolve(config, env={}).object_spilling_directory == "/tmp/c"


def test_empty_variables_count_as_unset_where_they_did() -> None:
    env = {"TRAY_CLUSTER_TOKEN": "", "TRAY_ADDRESS": "", "TRAY_GET_WARN_AFTER_S": "", "TRAY_TEST_SEED": ""}
    assert resolve({}, env=env) == Settings()
    assert get("progress_bar", {"TRAY_PROGRESS_BAR": "0"}) is False
    assert get("progress_bar", {"TRAY_PROGRESS_BAR": "1"}) is True
    assert get("progress_bar", {}) is None


def test_get_reads_the_environment_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAY_CLUSTER_TOKEN", "now")
    assert get("cluster_token") == "now"
    monkeypatch.delenv("TRAY_CLUSTER_TOKEN")
    assert get("cluster_token") is None


texts = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@given(token=texts, namespace=texts, job_id=texts, node_ip=texts,
       timeout=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
       warn=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
       threshold=st.floats(min_value=0.01, max_value=1.0), refresh=st.integers(0, 10**6),
       seed=st.integers(0, 2**32))
def test_what_a_parent_passes_down_its_child_resolves(token: str, namespace: str, job_id: str, node_ip: str,
                                                      timeout: float, warn: float, threshold: float, refresh: int,
                                                      seed: int) -> None:
    """A process started by tray gets its settings as variables (to_env) and reads them back whole."""
    given_values = {"cluster_token": token, "namespace": namespace, "job_id": job_id, "node_ip": node_ip,
                    "node_timeout_s": timeout, "get_warn_after_s": warn, "memory_usage_threshold": threshold,
                    "memory_monitor_refresh_ms": refresh, "test_seed": seed}
    settings = resolve({}, env=to_env(**given_values))
    assert {k: getattr(settings, k) for k in given_values} == given_values


def _string_constants(path: Path) -> list[str]:
    """The string literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


# Floors that may not import tray._config (the layer map: public API and tray.lowlevel only);
# their variables wait for tray.lowlevel to pass the table on.
LIBRARY_FLOORS = ("tune", "rllib", "train", "data", "serve", "dashboard", "job_submission", "debug", "util",
                  "experimental", "_air")
# Modules below the libraries that still spell a variable, and why; this may only shrink.
NOT_YET: dict[str, str] = {
    "testing/leaks.py": "TRAY_TEST_SESSION_TOKEN marks this test session's processes (moved from tests/conftest.py)",
}


def test_no_module_but_config_spells_a_tray_variable() -> None:
    """Every TRAY_* name below the libraries lives in _config's table; other modules ask it
    (env_name, get, to_env)."""
    spelled = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if path == Path(_config.__file__) or rel.parts[0] in LIBRARY_FLOORS:
            continue
        names = [s for s in _string_constants(path) if s.startswith("TRAY_")]
        if names and str(rel) not in NOT_YET:
            spelled[str(rel)] = names
    assert not spelled, f"spell these through tray._config: {spelled}"
    stale = [m for m in NOT_YET if (ROOT / m).exists() and
             not any(s.startswith("TRAY_") for s in _string_constants(ROOT / m))]
    assert not stale, f"remove these from NOT_YET, they no longer spell a variable: {stale}"
