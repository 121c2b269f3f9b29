"""Trainables by name: ``tune.register_trainable("my", fn)`` and a built-in table of RLlib's
algorithms as ``"module:name"`` strings, resolved at use so Tune never imports RLlib."""

from __future__ import annotations

import importlib
import threading
from typing import Any

BUILTIN_TRAINABLES: dict[str, str] = {
    "PPO": "tray.rllib.algorithms.ppo:PPO",
    "APPO": "tray.rllib.algorithms.appo:APPO",
    "IMPALA": "tray.rllib.algorithms.impala:IMPALA",
    "DQN": "tray.rllib.algorithms.dqn:DQN",
    "SAC": "tray.rllib.algorithms.sac:SAC",
    "BC": "tray.rllib.algorithms.bc:BC",
    "MARWIL": "tray.rllib.algorithms.marwil:MARWIL",
    "CQL": "tray.rllib.algorithms.cql:CQL",
    "DreamerV3": "tray.rllib.algorithms.dreamerv3:DreamerV3",
}

_registry: dict[str, Any] = {}
_lock = threading.Lock()


def register_trainable(name: str, trainable: Any, warn: bool = True) -> None:
    """Make ``trainable`` (a function, a ``Trainable`` class or a "module:name" string) runnable as ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_trainable: the name must be a non-empty string, got {name!r}")
    if not (callable(trainable) or (isinstance(trainable, str) and ":" in trainable)):
        raise TypeError(f"register_trainable({name!r}): a trainable must be a function, a Trainable class or a "
                        f"'module:name' string, got {type(trainable).__name__}")
    with _lock:
        _registry[name] = trainable


_ENV_REGISTRY = "tray.rllib.env.registry"  # RLlib's, imported at call time: Tune never imports RLlib itself


def register_env(name: str, env_creator: Any) -> None:
    """Ray's ``tune.register_env``: ``env_creator(env_config)`` becomes the env named ``name`` in RLlib
    configs, in every process of the cluster (RLlib's env registry keeps it in the cluster's KV table)."""
    importlib.import_module(_ENV_REGISTRY).register_env(name, env_creator)


def get_env_creator(name: str) -> Any:
    return importlib.import_module(_ENV_REGISTRY).get_env_creator(name)


def is_registered(name: str) -> bool:
    return name in _registry or name in BUILTIN_TRAINABLES


def get_trainable_cls(name: str) -> Any:
    """The trainable registered as ``name``, importing a "module:name" entry now."""
    with _lock:
        entry = _registry.get(name, BUILTIN_TRAINABLES.get(name))
    if entry is None:
        known = sorted({*_registry, *BUILTIN_TRAINABLES} - {k for k in _registry if k.startswith("__env__/")})
        raise ValueError(f"unknown trainable {name!r}: register it with tune.register_trainable(name, fn) "
                         f"(known: {', '.join(known)})")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"trainable {name!r} is {entry}, which cannot be imported: {exc}") from exc
    return entry
