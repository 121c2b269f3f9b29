"""The runtime_env of this process and of the tasks and actors it submits (driver side).

A driver's base environment is its job's (``tray.init(runtime_env=...)``); a worker's is the
one it was started in (its node passes it in ``TRAY_RUNTIME_ENV``), so nested tasks and
actors inherit their parent's. A call's own ``runtime_env`` is merged over that base as Ray
merges them, its local ``working_dir``/``py_modules`` uploaded once (content-addressed) and
replaced by their ``kv://`` URIs. What a lease then carries is ``(key, env)``, or None for
the default environment: the fast path, which costs one dict lookup per call.
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Any

from ..cluster import _runtime_env as renv

if TYPE_CHECKING:
    from ._runtime import Runtime

ENV_VAR = renv.WORKER_ENV_VAR  # a worker's runtime_env (JSON), set by the node that started it

LeaseEnv = tuple[str, dict[str, Any]]  # (key, resolved runtime_env), what a lease request carries

_inherited: dict[str, Any] | None = None  # this worker's, parsed once
_jobs: dict[str, dict[str, Any]] = {}  # a driver's job id -> its (uploaded) runtime_env
_resolved: dict[tuple[str, str], LeaseEnv | None] = {}  # (job id, a call's env as JSON) -> what it leases with
_lock = threading.Lock()


def check(value: Any) -> bool:
    """An option's check: a valid runtime_env, else ValueError naming the bad field."""
    renv.validate(value)
    return True


def _worker_env() -> dict[str, Any]:
    global _inherited
    if _inherited is None:
        text = os.environ.get(ENV_VAR)
        _inherited = json.loads(text) if text else {}
    return _inherited


def base(rt: Runtime) -> dict[str, Any]:
    """This process's runtime_env: the job's in a driver, the one it runs in in a worker."""
    if rt.worker_id is not None:
        return _worker_env()
    return _jobs.get(rt.job_id, {})


def upload(rt: Runtime, env: dict[str, Any] | None) -> dict[str, Any]:
    """``env`` checked, with its local directories uploaded to the cluster (once per content)."""
    if not env or not (env.get("working_dir") or env.get("py_modules")):
        return renv.validate(env)
    control = rt.control

    async def exists(name: str) -> bool:
        return await control.kv_exists.ask(renv.PKG_NAMESPACE, name)

    async def put(name: str, data: bytes) -> None:
        await control.kv_put.ask(renv.PKG_NAMESPACE, name, data, False)

    return renv.upload(env, lambda name: rt.call(exists, name), lambda name, data: rt.call(put, name, data))


def job_default() -> dict[str, Any] | None:
    """The runtime_env a driver's job has when ``tray.init`` names none: that of the submitted
    job (``JobSubmissionClient.submit_job(runtime_env=...)``) whose entrypoint it is, as in Ray."""
    text = os.environ.get(renv.JOB_ENV_VAR)
    return json.loads(text) if text else None


def set_job_env(rt: Runtime, env: dict[str, Any] | None) -> None:
    """A driver's job-wide runtime_env (``tray.init(runtime_env=...)``), uploaded now, and
    (``config.eager_install``, the default) prepared on this node before its first task."""
    if not env:
        return
    env = _jobs[rt.job_id] = upload(rt, env)
    if (env.get("config") or {}).get("eager_install", True):
        rt.soon(rt.scheduler.prepare_env.try_tell, (renv.key_of(env), env))


def forget_job(job_id: str) -> None:
    _jobs.pop(job_id, None)
    with _lock:
        for k in [k for k in _resolved if k[0] == job_id]:
            del _resolved[k]


def for_call(rt: Runtime, given: dict[str, Any] | None) -> LeaseEnv | None:
    """What a task or actor created now leases with: None in the default environment."""
    parent = base(rt)
    if not given and not parent:
        return None
    cache_key = (rt.job_id, json.dumps(given, sort_keys=True, default=repr) if given else "")  # modules: repr
    with _lock:
        if cache_key in _resolved:
            return _resolved[cache_key]
    env = renv.merge(parent, upload(rt, given) if given else None)
    out = (renv.key_of(env), env) if env else None
    with _lock:
        _resolved[cache_key] = out
    return out


def current(rt: Runtime | None) -> RuntimeEnv:
    """This process's runtime_env (``get_runtime_context().runtime_env``)."""
    return RuntimeEnv(_validate=False, **(base(rt) if rt is not None else {}))


# ------------------------------------------------------ Ray's typed spelling (tray.runtime_env)


class RuntimeEnvConfig(dict):
    """How a runtime_env is set up: ``setup_timeout_seconds`` (600; -1: no limit) and
    ``eager_install`` (True: a job's env is prepared when the job starts, not at its first task)."""

    def __init__(self, setup_timeout_seconds: float = renv.DEFAULT_SETUP_TIMEOUT_S, eager_install: bool = True,
                 log_files: list[str] | None = None) -> None:
        super().__init__(setup_timeout_seconds=setup_timeout_seconds, eager_install=eager_install,
                         log_files=list(log_files or []))
        renv.validate({"config": dict(self)})

    @staticmethod
    def parse_and_validate_runtime_env_config(config: dict[str, Any] | RuntimeEnvConfig) -> RuntimeEnvConfig:
        if isinstance(config, RuntimeEnvConfig):
            return config
        if not isinstance(config, dict):
            raise TypeError(f"runtime_env['config'] must be a dict or RuntimeEnvConfig, got {type(config).__name__}")
        return RuntimeEnvConfig(**config)


class RuntimeEnv(dict):
    """A runtime_env (a dict of Ray's fields), checked when made: ValueError names a bad or
    unsupported field."""

    known_fields = set(renv.KNOWN_KEYS)

    def __init__(self, *, py_modules: list[str] | None = None, working_dir: str | None = None,
                 pip: list[str] | str | dict[str, Any] | None = None, env_vars: dict[str, str] | None = None,
                 config: dict[str, Any] | RuntimeEnvConfig | None = None, uv: list[str] | str | None = None,
                 _validate: bool = True, **kwargs: Any) -> None:
        super().__init__()
        fields = {"py_modules": py_modules, "working_dir": working_dir, "pip": pip, "env_vars": env_vars,
                  "uv": uv, **kwargs}
        for key, value in fields.items():
            if value is not None:
                self[key] = value
        if config is not None:
            self["config"] = RuntimeEnvConfig.parse_and_validate_runtime_env_config(config)
        if _validate:
            renv.validate(dict(self))

    def to_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, dict) else v for k, v in self.items()}

    def serialize(self) -> str:
        """The runtime_env as JSON (Ray's ``get_runtime_env_string()`` form)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def deserialize(cls, serialized: str) -> RuntimeEnv:
        return cls(_validate=False, **json.loads(serialized))

    def env_vars(self) -> dict[str, str]:
        return dict(self.get("env_vars") or {})

    def has_working_dir(self) -> bool:
        return bool(self.get("working_dir"))

    def working_dir_uri(self) -> str | None:
        wd = self.get("working_dir")
        return wd if isinstance(wd, str) and wd.startswith(renv.PKG_SCHEME) else None

    def py_modules(self) -> list[str]:
        return list(self.get("py_modules") or [])

    def has_pip(self) -> bool:
        return bool(self.get("pip"))

    def has_uv(self) -> bool:
        return bool(self.get("uv"))

    def pip_config(self) -> dict[str, Any]:
        return {"packages": renv.requirements(self["pip"])} if self.get("pip") else {}
