"""Runtime environments (Ray's ``runtime_env``): checking one, merging a child's over its
parent's, packing its local directories into content-addressed packages, and preparing it
on a node (unpacked packages, a cached virtualenv for ``pip``/``uv``) for a process (a
worker, a job's entrypoint) to start in.

Packages travel through the cluster's KV table (namespace ``_tray_packages``) under
``pkg_<sha256 of the zip>.zip``: the same directory uploads once, and each node unpacks
each package once (a lock file guards concurrent first uses). A ``pip`` environment is a
virtualenv (``--system-site-packages``, so tray and its dependencies stay importable) per
distinct requirement list, built once per node under the same kind of lock; a failing
build raises ``RuntimeEnvSetupError`` carrying pip's output.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import threading
import time
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _config
from ..exceptions import RuntimeEnvSetupError

PKG_NAMESPACE = "_tray_packages"
PKG_SCHEME = "kv://"
MAX_PACKAGE_BYTES = 100 * 2**20  # Ray's limit for an uploaded working_dir
DEFAULT_SETUP_TIMEOUT_S = 600.0
WORKER_ENV_VAR = _config.env_name("runtime_env")  # a worker's runtime_env as JSON, set by the node that starts it
JOB_ENV_VAR = _config.env_name("job_runtime_env")  # a submitted job's runtime_env as JSON: its driver's tasks run in it
KNOWN_KEYS = ("env_vars", "working_dir", "py_modules", "pip", "uv", "excludes", "config")


def _module_path(module: Any) -> str:
    """A py_modules entry as a path: a path as given, an imported package as its directory (Ray's)."""
    if isinstance(module, str):
        return module
    if isinstance(module, types.ModuleType):
        paths = list(getattr(module, "__path__", None) or [])
        if len(paths) != 1:
            raise ValueError(f"runtime_env['py_modules']: module {module.__name__!r} is not a package of one "
                             f"directory; give its directory or a wheel instead")
        return str(paths[0])
    raise ValueError(f"runtime_env['py_modules'] must be a list of paths or imported packages, "
                     f"got a {type(module).__name__}")


def validate(runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """The runtime_env checked (a copy); ValueError naming the bad field."""
    if runtime_env is None:
        return {}
    if not isinstance(runtime_env, dict):
        raise ValueError(f"runtime_env must be a dict, got {type(runtime_env).__name__}")
    unknown = sorted(set(runtime_env) - set(KNOWN_KEYS))
    if unknown:
        raise ValueError(f"runtime_env: unsupported field(s) {', '.join(unknown)}; supported: {', '.join(KNOWN_KEYS)}")
    env = dict(runtime_env)
    env_vars = env.get("env_vars")
    if env_vars is not None and (not isinstance(env_vars, dict) or
                                 not all(isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items())):
        raise ValueError("runtime_env['env_vars'] must be a dict of str to str")
    if env.get("working_dir") is not None and not isinstance(env["working_dir"], str):
        raise ValueError("runtime_env['working_dir'] must be a path (str)")
    mods = env.get("py_modules")
    if mods is not None:
        if not isinstance(mods, list):
            raise ValueError("runtime_env['py_modules'] must be a list of paths or imported packages")
        env["py_modules"] = [_module_path(m) for m in mods]
    for key in ("pip", "uv"):
        if env.get(key) is not None:
            env[key] = requirements(env[key], key)
    if env.get("pip") and env.get("uv"):
        raise ValueError("runtime_env: give 'pip' or 'uv', not both")
    excludes = env.get("excludes")
    if excludes is not None and (not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes)):
        raise ValueError("runtime_env['excludes'] must be a list of patterns")
    config = env.get("config")
    if config is not None:
        if not isinstance(config, dict) or set(config) - {"setup_timeout_seconds", "eager_install", "log_files"}:
            raise ValueError("runtime_env['config'] takes setup_timeout_seconds and eager_install")
        if config.get("log_files"):
            raise ValueError("runtime_env['config']['log_files'] is not supported by tray (worker logs are "
                             "in the session's logs directory: tray logs)")
        if not isinstance(config.get("eager_install", True), bool):
            raise ValueError("runtime_env['config']['eager_install'] must be a bool")
        timeout = config.get("setup_timeout_seconds", DEFAULT_SETUP_TIMEOUT_S)
        if not isinstance(timeout, (int, float)) or (timeout <= 0 and timeout != -1):
            raise ValueError("runtime_env['config']['setup_timeout_seconds'] must be > 0 (or -1: no limit)")
    return env


def merge(parent: dict[str, Any] | None, child: dict[str, Any] | None) -> dict[str, Any]:
    """A child's runtime_env over its parent's (the job's, or the submitting task's), as Ray
    merges them: each field the child gives replaces the parent's, except ``env_vars``,
    which merge (the child's win)."""
    if not parent:
        return dict(child or {})
    if not child:
        return dict(parent)
    out = {**parent, **child}
    if parent.get("env_vars") and child.get("env_vars") is not None:
        out["env_vars"] = {**parent["env_vars"], **child["env_vars"]}
    return out


def key_of(runtime_env: dict[str, Any]) -> str:
    """The identity of a (resolved: packages as URIs) runtime_env: workers started in it serve
    only leases that carry the same key."""
    return hashlib.sha256(json.dumps(runtime_env, sort_keys=True).encode()).hexdigest()[:20]


def setup_timeout(runtime_env: dict[str, Any]) -> float | None:
    """Seconds its setup may take (``config.setup_timeout_seconds``; None: no limit)."""
    timeout = (runtime_env.get("config") or {}).get("setup_timeout_seconds", DEFAULT_SETUP_TIMEOUT_S)
    return None if timeout == -1 else float(timeout)


def requirements(spec: Any, key: str = "pip") -> list[str]:
    """A pip/uv field as the arguments of its install: a list of requirements, a requirements
    file, or Ray's dict form ``{"packages": [...], "pip_install_options": [...]}`` (options
    first); Ray's settings tray does not honour are refused by name."""
    options: list[str] = []
    if isinstance(spec, dict):
        if "packages" not in spec:
            raise ValueError(f"runtime_env[{key!r}] as a dict needs 'packages'")
        opts_key = "pip_install_options" if key == "pip" else "uv_pip_install_options"
        unsupported = sorted(k for k in set(spec) - {"packages", opts_key, f"{key}_check"})
        if spec.get(f"{key}_check"):
            unsupported.append(f"{key}_check=True")
        if unsupported:
            raise ValueError(f"runtime_env[{key!r}]: {', '.join(unsupported)} not supported by tray "
                             f"(give 'packages' and '{opts_key}')")
        options = spec.get(opts_key) or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"runtime_env[{key!r}][{opts_key!r}] must be a list of str")
        spec = spec["packages"]
    if isinstance(spec, str):
        if not os.path.isfile(spec):
            raise ValueError(f"runtime_env[{key!r}]: no requirements file {spec!r}")
        with open(spec) as f:
            return [*options, *(ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#"))]
    if not isinstance(spec, list) or not all(isinstance(r, str) for r in spec):
        raise ValueError(f"runtime_env[{key!r}] must be a list of requirements, a requirements file or "
                         f"{{'packages': [...]}}")
    return [*options, *spec]


# ---------------------------------------------------------------- packing (client side)


def _excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatch(rel, p) or any(fnmatch.fnmatch(part, p.rstrip("/")) for part in parts)
               for p in patterns)


def pack(path: str, excludes: list[str] | None = None, prefix: str = "") -> bytes:
    """A directory (or a .zip/.whl file, as is) as zip bytes that depend only on its content:
    entries sorted, fixed timestamps; ``excludes`` are gitignore-like name patterns; each
    entry under ``prefix/`` (a py_module keeps its package directory)."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read()
    if not os.path.isdir(path):
        raise ValueError(f"runtime_env: {path!r} is neither a directory nor a file")
    patterns = ["__pycache__", "*.pyc", ".git", *(excludes or [])]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            rel_root = os.path.relpath(root, path)
            dirs[:] = [d for d in dirs if not _excluded(os.path.normpath(os.path.join(rel_root, d)), patterns)]
            for name in sorted(files):
                rel = os.path.normpath(os.path.join(rel_root, name)).replace(os.sep, "/")
                if _excluded(rel, patterns):
                    continue
                info = zipfile.ZipInfo(f"{prefix}/{rel}" if prefix else rel, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (os.stat(os.path.join(root, name)).st_mode & 0o777) << 16
                with open(os.path.join(root, name), "rb") as f:
                    zf.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    if len(data) > MAX_PACKAGE_BYTES:
        raise ValueError(f"runtime_env: {path!r} packs to {len(data) >> 20} MiB, over the "
                         f"{MAX_PACKAGE_BYTES >> 20} MiB limit (use 'excludes' to leave big files out)")
    return data


def package_uri(data: bytes) -> str:
    """The content address of a package: ``kv://pkg_<sha256>.zip``."""
    return f"{PKG_SCHEME}pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip"


def upload(runtime_env: dict[str, Any] | None, exists: Callable[[str], bool],
           put: Callable[[str, bytes], None]) -> dict[str, Any]:
    """The runtime_env with each local ``working_dir``/``py_modules`` path replaced by the URI
    of its package, uploaded with ``put(name, data)`` unless ``exists(name)``."""
    env = validate(runtime_env)

    def one(path: str, module: bool) -> str:
        if path.startswith(PKG_SCHEME):
            return path
        path = os.path.abspath(os.path.expanduser(path))
        prefix = os.path.basename(path.rstrip(os.sep)) if module and os.path.isdir(path) else ""
        data = pack(path, env.get("excludes"), prefix)
        uri = package_uri(data)
        name = uri[len(PKG_SCHEME):]
        if not exists(name):
            put(name, data)
        return uri

    if env.get("working_dir"):
        env["working_dir"] = one(env["working_dir"], module=False)
    if env.get("py_modules"):
        env["py_modules"] = [one(m, module=True) for m in env["py_modules"]]
    return env


# ------------------------------------------------------------- preparing (node side)


@dataclass
class Prepared:
    """What a process needs to start in a runtime environment."""

    env: dict[str, str] = field(default_factory=dict)  # variables to set
    cwd: str | None = None
    python_path: list[str] = field(default_factory=list)  # put first on sys.path / PYTHONPATH
    python: str | None = None  # the interpreter (a virtualenv's), if not this one
    bin_dir: str | None = None  # put first on PATH


class _Lock:
    """An exclusive lock file (fcntl), so one process of the node builds what others wait for."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> _Lock:
        import fcntl

        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        os.close(self.fd)


def _unpack(uri: str, root: str, fetch: Callable[[str], bytes | None]) -> str:
    """The directory holding the unpacked package ``uri`` on this node (unpacked once)."""
    name = uri[len(PKG_SCHEME):] if uri.startswith(PKG_SCHEME) else None
    if name is None or "/" in name:
        if os.path.isdir(uri):  # a local directory on this node (a driver on the head gave it)
            return os.path.abspath(uri)
        raise RuntimeEnvSetupError(f"runtime_env: {uri!r} is not a package URI (kv://...) nor a local directory")
    pkgs = os.path.join(root, "packages")
    os.makedirs(pkgs, exist_ok=True)
    target = os.path.join(pkgs, name[: -len(".zip")])
    if os.path.isdir(target):
        return target
    with _Lock(target + ".lock"):
        if os.path.isdir(target):
            return target
        data = fetch(name)
        if data is None:
            raise RuntimeEnvSetupError(f"runtime_env: package {uri} is not in the cluster (was it uploaded?)")
        tmp = target + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            zf.extractall(tmp)
        os.replace(tmp, target)
    return target


def env_key(reqs: list[str], tool: str) -> str:
    """The cache key of a virtualenv: its tool and requirement list (order kept: pip's order matters)."""
    return hashlib.sha256(json.dumps([tool, reqs, sys.version]).encode()).hexdigest()[:24]


class _Stopped(Exception):
    """A setup step was ended: over its time (``timed_out``), or its node is stopping."""

    def __init__(self, output: str, timed_out: bool) -> None:
        super().__init__(output)
        self.output, self.timed_out = output, timed_out


def _run(cmd: list[str], deadline: float | None, stop: threading.Event | None) -> tuple[int, str]:
    """Run ``cmd`` in a process group of its own (pip starts a child of its own in the target
    interpreter); past ``deadline`` (time.monotonic) or once ``stop`` is set, the whole group
    is killed and :class:`_Stopped` raised with the output so far. ``(exit code, output)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    while True:
        try:
            out, _ = proc.communicate(timeout=0.2)
            return proc.returncode, out
        except subprocess.TimeoutExpired:
            timed_out = deadline is not None and time.monotonic() > deadline
            if timed_out or (stop is not None and stop.is_set()):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                out, _ = proc.communicate()
                raise _Stopped(out or "", timed_out) from None


def _venv(reqs: list[str], tool: str, root: str, deadline: float | None, stop: threading.Event | None) -> str:
    """A virtualenv with ``reqs`` installed, built once per node; its directory."""
    venvs = os.path.join(root, "venvs")
    os.makedirs(venvs, exist_ok=True)
    target = os.path.join(venvs, env_key(reqs, tool))
    if os.path.exists(os.path.join(target, ".ready")):
        return target
    with _Lock(target + ".lock"):
        if os.path.exists(os.path.join(target, ".ready")):
            return target
        shutil.rmtree(target, ignore_errors=True)
        # this interpreter's packages (tray's dependencies) stay importable, after those installed
        # there; pip sees them too, so it installs only what they lack
        steps: list[Any] = [[sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", target],
                            _parent_site_packages]
        python = os.path.join(target, "bin", "python")
        if tool == "uv" and shutil.which("uv"):
            steps.append(["uv", "pip", "install", "--python", python, *reqs])
        else:  # this interpreter's pip installs into the new environment
            steps.append([sys.executable, "-m", "pip", "--python", python, "install", "--disable-pip-version-check",
                          "--no-input", *reqs])
        for cmd in steps:
            if callable(cmd):
                cmd(target)
                continue
            try:
                code, output = _run(cmd, deadline, stop)
            except _Stopped as exc:
                shutil.rmtree(target, ignore_errors=True)
                why = "took over its config.setup_timeout_seconds" if exc.timed_out else "was stopped (its node stops)"
                raise RuntimeEnvSetupError(f"runtime_env: {tool} setup {why}; output:\n{exc.output}") from None
            if code != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise RuntimeEnvSetupError(f"runtime_env: {tool} install of {reqs} failed "
                                           f"(exit {code}); output:\n{output}")
        open(os.path.join(target, ".ready"), "w").close()
    return target


def _parent_dirs() -> list[str]:
    """This interpreter's site-packages directories (a virtualenv's own, and its base's)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        dirs.append(site.getusersitepackages())
    return dirs


def without_parent_site(paths: list[str]) -> list[str]:
    """``paths`` less this interpreter's site-packages (for a process in a virtualenv, which
    reaches them after its own packages)."""
    parents = set(_parent_dirs())
    return [p for p in paths if p not in parents]


def _parent_site_packages(target: str) -> None:
    """Make this interpreter's packages (tray's own dependencies) importable in the new
    virtualenv after the ones installed there: ``--system-site-packages`` alone reaches the
    base interpreter's, not those of the virtualenv tray runs from."""
    found = [os.path.join(target, "lib", d, "site-packages") for d in os.listdir(os.path.join(target, "lib"))]
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _parent_dirs())
    for d in found:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "_tray_parent.pth"), "w") as f:
            f.write(lines)


def prepare(runtime_env: dict[str, Any] | None, root: str, fetch: Callable[[str], bytes | None],
            stop: threading.Event | None = None) -> Prepared:
    """Make ``runtime_env`` ready on this node under ``root`` (packages fetched with
    ``fetch(name)``) within its setup timeout; raises RuntimeEnvSetupError saying what failed.
    Setting ``stop`` (from another thread) ends a running install at once."""
    env = validate(runtime_env)
    out = Prepared(env=dict(env.get("env_vars") or {}))
    timeout = setup_timeout(env)
    deadline = None if timeout is None else time.monotonic() + timeout
    if env.get("working_dir"):
        out.cwd = _unpack(env["working_dir"], root, fetch)
        out.python_path.append(out.cwd)
    for uri in env.get("py_modules") or []:  # each unpacks to a directory holding the module
        out.python_path.append(_unpack(uri, root, fetch))
    for tool in ("pip", "uv"):
        if env.get(tool):
            venv = _venv(env[tool], tool, root, deadline, stop)
            out.python = os.path.join(venv, "bin", "python")
            out.bin_dir = os.path.join(venv, "bin")
            out.env["VIRTUAL_ENV"] = venv
    return out


def apply_env(base: dict[str, str], prepared: Prepared) -> dict[str, str]:
    """A process environment: ``base`` with the prepared variables, PYTHONPATH and PATH."""
    env = dict(base)
    env.update(prepared.env)
    inherited = [p for p in (env.get("PYTHONPATH") or "").split(os.pathsep) if p]
    if prepared.python:  # a virtualenv's packages come before this interpreter's (its .pth adds them after)
        inherited = without_parent_site(inherited)
    if prepared.python_path or inherited:
        env["PYTHONPATH"] = os.pathsep.join([*prepared.python_path, *inherited])
    if prepared.bin_dir:
        env["PATH"] = os.pathsep.join([prepared.bin_dir, *filter(None, [env.get("PATH")])])
    return env
