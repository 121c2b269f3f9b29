"""The public API is exactly what ``__all__`` declares, in tray and in each subpackage."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import tray
import tray.exceptions


def _modules_with_all() -> list[types.ModuleType]:
    """tray and every subpackage/module of it (non-private) that defines ``__all__``."""
    mods = [tray]
    for info in pkgutil.walk_packages(tray.__path__, prefix="tray.", onerror=lambda name: None):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mod = importlib.import_module(info.name)
        if hasattr(mod, "__all__"):
            mods.append(mod)
    return mods


MODULES = _modules_with_all()
PACKAGES = [m for m in MODULES if hasattr(m, "__path__")]


@pytest.fixture(params=MODULES, ids=[m.__name__ for m in MODULES])
def module(request: pytest.FixtureRequest) -> types.ModuleType:
    return request.param


def test_all_names_exist(module: types.ModuleType) -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module.__name__}.__all__ lists names it does not define: {missing}"


def test_all_has_no_private_names_or_duplicates(module: types.ModuleType) -> None:
    names = list(module.__all__)
    assert not [n for n in names if n.startswith("_")], f"{module.__name__}.__all__ has private names"
    assert len(names) == len(set(names)), f"{module.__name__}.__all__ has duplicates"


@pytest.mark.parametrize("package", PACKAGES, ids=[m.__name__ for m in PACKAGES])
def test_nothing_public_is_undeclared(package: types.ModuleType) -> None:
    """Every public attribute of a package that is not a submodule is declared in ``__all__``.

    Packages (tray and its subpackages) are the public faces; a plain module such as
    ``tray.exceptions`` may keep its own imports public, only its ``__all__`` must be right.
    """
    declared = set(package.__all__)
    undeclared = sorted(
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and name not in declared
        and not (isinstance(value, types.ModuleType) and value.__name__.startswith(package.__name__ + "."))
        and not (name == "annotations" and value.__class__.__name__ == "_Feature")
    )
    assert not undeclared, f"{package.__name__} exposes names missing from __all__: {undeclared}"


def test_exceptions_are_exceptions() -> None:
    for name in tray.exceptions.__all__:
        obj = getattr(tray.exceptions, name)
        assert isinstance(obj, type) and issubclass(obj, Exception), f"tray.exceptions.{name}"
