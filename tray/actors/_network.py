"""What the kernel asks of a network layer, and where the default one is found.

The kernel does not import the transport: a system that is given an address (or first
talks to a peer) makes its network with a factory, by default the one named by
``DEFAULT_NETWORK`` (a ``"module:name"`` string resolved at first use, so ``import tray``
and a worker's start do not load the transport before it is needed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import trio

    from ._actor import Actor
    from ._ref import ActorRef
    from ._system import ActorSystem

DEFAULT_NETWORK = "tray.transport:Network"


class Network(Protocol):
    """One system's link to its peers (``tray.transport.Network`` is the default)."""

    address: str | None
    """Where peers reach the system, once it listens (None: it only dials out)."""

    @property
    def token(self) -> str:
        """The cluster token this system presents to peers."""

    async def start(self, nursery: trio.Nursery, address: str | None) -> None:
        """Start serving in ``nursery``; listen at ``address`` if given."""

    async def aclose(self) -> None:
        """Say goodbye to every peer and stop listening."""

    async def spawn_remote(self, at: str, cls: type[Actor], args: tuple, kwargs: dict, opts: dict) -> ActorRef:
        """Spawn an actor in the system at ``at``; its ref as seen from here."""

    async def lookup_remote(self, address: str, name: str) -> ActorRef | None:
        """The actor named ``name`` in the system at ``address``, or None."""

    def resolve(self, uid: str, cls_name: str, name: str | None, proto: dict, address: str | None) -> ActorRef:
        """The ref of actor ``uid`` (whose system listens at ``address``) as seen from here."""


NetworkFactory = Callable[["ActorSystem", "str | bytes | None", Any, Any], Network]
"""``factory(system, token, transport, config) -> Network``."""


def load_factory(spec: str | NetworkFactory) -> NetworkFactory:
    """A network factory: ``spec`` itself, or the object a ``"module:name"`` string names."""
    if not isinstance(spec, str):
        return spec
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"a network factory is named as 'module:name', got {spec!r}")
    return getattr(importlib.import_module(module), name)
