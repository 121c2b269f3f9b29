"""The layer map of DESIGN.md, held by reading every import in tray/ — at module level,
inside functions and under ``TYPE_CHECKING`` alike.

Top to bottom: the CLI > the libraries > ``util``, ``experimental``, ``_air``, ``testing``,
``cluster_utils`` > ``lowlevel`` > the ``tray`` face > ``core`` > ``cluster`` > ``store`` >
``supervisors`` | ``transport`` > ``actors`` > ``exceptions``, ``_config``. A module imports
only from floors below its own (or its own package). Libraries, ``util``, ``experimental`` and
``_air`` go further: tray's public API and ``tray.lowlevel`` only, as a third-party library
would; and serve, data, dashboard and debug import none of each other. A reference that must
point upward is a ``"module:name"`` string resolved at use, which this test does not see.

``ALLOWED`` lists today's exceptions, each with why; it may only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tray

ROOT = Path(tray.__file__).parent

LIBRARIES = ("tune", "rllib", "train", "data", "serve", "dashboard", "job_submission", "debug")
EXCLUSIVE = ("serve", "data", "dashboard", "debug")  # import none of each other
CLI = ("_cli", "cli", "__main__", "_perf", "_logs_cli", "_state_cli", "_memory_cli", "_timeline_cli")
RANK: dict[str, float] = {
    **{name: 0 for name in CLI},
    **{name: 1 for name in LIBRARIES},
    **{name: 2 for name in ("util", "experimental", "_air", "testing", "cluster_utils")},
    "lowlevel": 3,
    "": 3.5,  # the tray package itself: the public face the floors above import
    "actor": 3.5,  # Ray's ray.actor names, a face like tray's own
    "job_config": 3.5,
    "runtime_context": 3.5,  # Ray's ray.runtime_context: RuntimeContext
    "runtime_env": 3.5,  # Ray's ray.runtime_env: RuntimeEnv, RuntimeEnvConfig
    "core": 4,
    "cluster": 5,
    "store": 6,
    "supervisors": 7,
    "transport": 7,
    "actors": 8,
    "exceptions": 9,
    "_config": 9,
    "_meta": 9,
    "_deferred": 9,  # standard modules a worker imports on first use: the standard library only
}
# What the libraries (and util, experimental, _air) may import: the public faces, lowlevel,
# and the shared library layers; never a private module of the kernel or supervisors.
PUBLIC = ("", "lowlevel", "exceptions", "actor", "job_config", "runtime_context", "runtime_env", "actors",
          "supervisors", "util", "experimental", "_air", *LIBRARIES)
RESTRICTED = (*LIBRARIES, "util", "experimental", "_air")

# (importing module, imported module) pairs that break the map today, and why.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every tray module ``path`` imports, absolute, wherever the import statement sits."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:  # ``from . import x``: x may be a submodule
                sub = f"{module}.{alias.name}"
                is_module = (ROOT.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                    (ROOT.parent / sub.replace(".", "/")).is_dir()
                found.add(sub if is_module else module)
    return {m for m in found if m == "tray" or m.startswith("tray.")}


def _floor(module: str) -> str:
    parts = module.split(".")
    floor = parts[1] if len(parts) > 1 else ""
    return "_cli" if floor in CLI else floor


def _violation(importer: str, imported: str) -> str | None:
    src, dst = _floor(importer), _floor(imported)
    if src == dst and src != "":
        return None
    if src not in RANK or dst not in RANK:
        return f"{importer} or {imported} is on no floor of the map: add it to RANK"
    if src in RESTRICTED:
        private = any(part.startswith("_") for part in imported.split(".")[2:])
        if dst not in PUBLIC or (private and dst != "_air"):
            return f"{importer} reaches into {imported}: libraries use tray's public API and tray.lowlevel"
        if src in EXCLUSIVE and dst in EXCLUSIVE:
            return f"{importer} imports {imported}: serve, data, dashboard and debug import none of each other"
        if dst in LIBRARIES or RANK[dst] >= RANK[src]:
            return None if dst in LIBRARIES or RANK[dst] > RANK[src] else f"{importer} imports its peer {imported}"
    if RANK[dst] <= RANK[src]:
        return f"{importer} (floor {src or 'tray'}) imports {imported} (floor {dst or 'tray'}), which is not below it"
    return None


def test_every_import_follows_the_layer_map() -> None:
    broken = []
    for path in sorted(ROOT.rglob("*.py")):
        importer = _module_name(path)
        for imported in sorted(_imports(path)):
            why = _violation(importer, imported)
            if why is not None and (importer, imported) not in ALLOWED:
                broken.append(why)
    assert not broken, "the layer map is broken:\n" + "\n".join(broken)


def test_the_allow_list_only_names_imports_that_still_exist() -> None:
    present = {(_module_name(p), m) for p in ROOT.rglob("*.py") for m in _imports(p)}
    stale = [pair for pair in ALLOWED if pair not in present or _violation(*pair) is None]
    assert not stale, f"remove these from ALLOWED, they no longer break the map: {stale}"


def test_the_checker_sees_imports_inside_functions_and_type_checking() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cluster import _node\n"
              "def f():\n    from ..store import _shm\n")
    tree_path = ROOT / "tune" / "_probe_for_layer_test.py"
    assert not tree_path.exists()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found.add(node.module)
    assert found == {"typing", "cluster", "store"}
    assert _violation("tray.tune.x", "tray.cluster._node") is not None
    assert _violation("tray.serve.x", "tray.data") is not None
    assert _violation("tray.actors._system", "tray.transport._network") is not None
    assert _violation("tray.rllib.x", "tray.tune") is None
    assert _violation("tray.core._api", "tray.cluster._node") is None
