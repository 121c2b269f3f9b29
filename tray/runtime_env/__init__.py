"""Ray's ``ray.runtime_env``: :class:`RuntimeEnv` and :class:`RuntimeEnvConfig`.

A runtime_env says what a job, task or actor runs in: ``env_vars``, a ``working_dir`` (a
local directory or zip, uploaded once to the cluster and unpacked on each node, the
process's cwd and first on its import path), ``py_modules``, ``pip`` or ``uv`` packages (a
cached virtualenv per distinct list, per node), ``excludes`` (patterns left out of the
uploads) and ``config`` (the setup timeout). Plain dicts work too; these classes are
Ray's typed spelling of the same, checked when made. Fields tray cannot honour (conda,
containers, ...) raise ValueError naming them, rather than being ignored.
"""

from __future__ import annotations

from ..core._runtime_envs import RuntimeEnv, RuntimeEnvConfig

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]
