"""Ray's ``ray.job_config.JobConfig``: settings of the job a driver starts, passed as
``tray.init(job_config=JobConfig(...))``.

tray honours ``ray_namespace`` (the job's namespace, as ``init(namespace=...)``) and
``runtime_env`` (the job's, as ``init(runtime_env=...)``); the JVM's settings, ``metadata`` and a detached
``default_actor_lifetime`` are refused by ``init`` with an error naming them, rather than
accepted and ignored.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobConfig"]

_LIFETIMES = ("detached", "non_detached")


class JobConfig:
    """A job's settings (Ray's signature; see the module docstring for what tray honours)."""

    def __init__(
        self,
        jvm_options: list[str] | None = None,
        code_search_path: list[str] | None = None,
        runtime_env: dict[str, Any] | None = None,
        _client_job: bool = False,
        metadata: dict[str, str] | None = None,
        ray_namespace: str | None = None,
        default_actor_lifetime: str = "non_detached",
        _py_driver_sys_path: list[str] | None = None,
    ) -> None:
        self.jvm_options = list(jvm_options or [])
        self.code_search_path = list(code_search_path or [])
        self.runtime_env: dict[str, Any] = {}
        self.metadata: dict[str, str] = {}
        self.ray_namespace: str | None = None
        self.default_actor_lifetime = "non_detached"
        self._client_job = _client_job
        self._py_driver_sys_path = list(_py_driver_sys_path or [])
        self.set_runtime_env(runtime_env)
        for key, value in (metadata or {}).items():
            self.set_metadata(key, value)
        self.set_ray_namespace(ray_namespace)
        self.set_default_actor_lifetime(default_actor_lifetime)

    def set_metadata(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"job metadata keys and values are str, got {key!r}: {value!r}")
        self.metadata[key] = value

    def set_runtime_env(self, runtime_env: dict[str, Any] | None, validate: bool = False) -> None:
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict, got {type(runtime_env).__name__}")
        self.runtime_env = dict(runtime_env or {})

    def set_ray_namespace(self, ray_namespace: str | None) -> None:
        if ray_namespace is not None and not isinstance(ray_namespace, str):
            raise TypeError(f"ray_namespace must be a str, got {type(ray_namespace).__name__}")
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime: str) -> None:
        if default_actor_lifetime not in _LIFETIMES:
            raise ValueError(f"default_actor_lifetime must be one of {_LIFETIMES}, got {default_actor_lifetime!r}")
        self.default_actor_lifetime = default_actor_lifetime

    def unsupported(self) -> list[str]:
        """The settings given that tray cannot honour (``init`` refuses them by name)."""
        out = [name for name, value in (("jvm_options", self.jvm_options), ("code_search_path", self.code_search_path),
                                        ("metadata", self.metadata)) if value]
        if self.default_actor_lifetime != "non_detached":
            out.append("default_actor_lifetime='detached'")
        return out

    def __repr__(self) -> str:
        return (f"JobConfig(ray_namespace={self.ray_namespace!r}, runtime_env={self.runtime_env!r}, "
                f"metadata={self.metadata!r}, default_actor_lifetime={self.default_actor_lifetime!r})")

    @classmethod
    def from_json(cls, job_config_json: dict[str, Any]) -> JobConfig:
        return cls(**{k: v for k, v in job_config_json.items() if k in (
            "jvm_options", "code_search_path", "runtime_env", "metadata", "ray_namespace",
            "default_actor_lifetime")})
