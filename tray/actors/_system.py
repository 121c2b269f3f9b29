"""``ActorSystem``: hosts actors in one trio run, names them, and keeps their dead letters."""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal

import attrs
import trio

from ..exceptions import ActorDiedError, NameTakenError, RayTaskError
from ._actor import Actor
from ._cell import Cell, Recipe
from ._mailbox import MailboxSpec
from ._network import DEFAULT_NETWORK, Network, NetworkFactory, load_factory
from ._ref import ActorRef

__all__ = ["ActorSystem", "DeadLetter", "unreachable"]

log = logging.getLogger("tray.actors")

# Every running system of this process, by uid, so an unpickled ActorRef finds its actor.
_systems: weakref.WeakValueDictionary[str, ActorSystem] = weakref.WeakValueDictionary()

# Set by tray.transport while it unpickles a message from a peer: builds the ref of an
# actor as seen from the receiving system (a proxy that reaches it over the network).
remote_resolver: ContextVar[Callable[..., ActorRef] | None] = ContextVar("tray_remote_resolver", default=None)


@attrs.frozen
class DeadLetter:
    """A message that was not handled, and why."""

    recipient: ActorRef
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reason: str


class ActorSystem:
    """A set of actors sharing one trio run: ``async with tray.ActorSystem() as system``.

    Leaving the block stops every actor (children before their parents, each within
    ``shutdown_timeout`` seconds before it is killed).
    """

    def __init__(
        self,
        *,
        shutdown_timeout: float = 5.0,
        dead_letter_limit: int = 10_000,
        address: str | None = None,
        token: str | None = None,
        transport: Any = None,
        net: Any = None,
        network: str | NetworkFactory = DEFAULT_NETWORK,
    ) -> None:
        """``address`` (``"tcp://127.0.0.1:0"``, ``"unix:///path"``) makes the system listen
        for peers; ``token`` is the cluster's shared secret (default: the
        ``TRAY_CLUSTER_TOKEN`` environment variable); ``transport`` adds a
        :class:`tray.transport.Transport` (e.g. in-memory); ``net`` is a
        :class:`tray.transport.NetConfig`. Without these the system still connects to
        peers on demand (``spawn(at=...)``, ``lookup_remote``). ``network`` makes the
        network layer, ``factory(system, token, transport, net)`` (see
        :mod:`tray.actors._network`), or names it as ``"module:name"``."""
        self.uid = os.urandom(4).hex()  # secrets.token_hex, without importing hmac (OpenSSL)
        self.address: str | None = None
        """Where peers reach this system, once it listens (the bound port filled in)."""
        self._net_args = (address, token, transport, net)
        self._network_factory = network
        self._net: Network | None = None
        self.shutdown_timeout = shutdown_timeout
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        """The most recent dead letters (at most ``dead_letter_limit``); ``dead_letter_count`` counts all."""
        self.dead_letter_count = 0
        self._cells: dict[str, Cell] = {}  # live actors in spawn order
        self._names: dict[str, Cell] = {}
        self._seq = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._nursery_cm: Any = None

    async def __aenter__(self) -> ActorSystem:
        if self._nursery_cm is not None:
            raise RuntimeError("an ActorSystem can be entered only once")
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        _systems[self.uid] = self
        address, _token, transport, _net = self._net_args
        if address is not None or transport is not None:
            try:
                await self._network()
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(self, *exc_info: Any) -> Literal[False]:  # never swallows an exception
        with trio.CancelScope(shield=True):
            await self.shutdown()
            if self._net is not None:
                await self._net.aclose()
        nursery_cm, self._nursery = self._nursery_cm, None
        await nursery_cm.__aexit__(None, None, None)
        _systems.pop(self.uid, None)
        return False

    async def shutdown(self) -> None:
        """Stop every actor: top-level ones in reverse spawn order (they stop their children)."""
        while self._cells:
            roots = [c for c in self._cells.values() if c.parent is None or c.parent.reason is not None]
            for cell in reversed(roots or list(self._cells.values())):
                await self._stop_cell(cell, "shutdown", self.shutdown_timeout)

    # ------------------------------------------------------------------ spawn

    async def spawn(
        self,
        cls: type[Actor],
        *args: Any,
        name: str | None = None,
        mailbox: MailboxSpec | None = None,
        max_concurrency: int = 1,
        link: ActorRef | None = None,
        decider: Callable[[Exception], str] | None = None,
        at: str | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Start an actor of ``cls`` (constructed with ``*args, **kwargs``) and return its ref.

        ``mailbox`` bounds its mailbox; ``max_concurrency`` lets that many async handlers
        run at once; ``link`` links it to an actor before it starts (its parent);
        ``decider(exc)`` says what a handler exception does to it: ``"resume"`` (the
        default without one) or anything else to crash it. Raises what ``__init__`` or
        ``on_start`` raised, as a :class:`~tray.exceptions.RayTaskError`. ``at`` (a
        peer's address) spawns it in that system instead and returns a ref to it there.
        """
        if at is not None and at != self.address:
            opts = {
                "name": name,
                "mailbox": mailbox,
                "max_concurrency": max_concurrency,
                "link": link,
                "decider": decider,
            }
            net = await self._network()
            return await net.spawn_remote(at, cls, args, kwargs, opts)
        if not (isinstance(cls, type) and issubclass(cls, Actor)):
            raise TypeError(f"spawn() needs a subclass of tray.Actor, got {cls!r}")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        recipe = Recipe(cls, args, kwargs, name, mailbox or MailboxSpec(), max_concurrency, link, decider)
        return await self._start(recipe, None)

    async def respawn(self, ref: ActorRef, reason: BaseException) -> ActorRef:
        """Start a new incarnation of the dead actor ``ref`` from the same recipe.

        The new instance gets ``on_restart(reason)`` instead of ``on_start()``; it takes
        over the name. Supervisors restart children with this.
        """
        cell = ref._cell
        if cell.reason is None:
            raise RuntimeError(f"{ref!r} is alive; only a dead actor can be respawned")
        return await self._start(cell.recipe, reason)

    async def _start(self, recipe: Recipe, restart_reason: BaseException | None) -> ActorRef:
        nursery = self._nursery
        if nursery is None:
            raise RuntimeError("this ActorSystem is not running: use `async with tray.ActorSystem() as system`")
        name = recipe.name
        if name is not None and name in self._names:
            raise NameTakenError(f"an actor named {name!r} already exists: {self._names[name].ref!r}")
        cell = Cell(self, recipe, f"{self.uid}:{next(self._seq)}", restart_reason)
        if cell.parent is not None:
            if cell.parent.reason is not None:
                raise ActorDiedError(f"cannot link to {recipe.link!r}: it is dead")
            cell.parent.links.add(cell)
            cell.links.add(cell.parent)
        self._cells[cell.ref._uid] = cell
        if name is not None:
            self._names[name] = cell
        nursery.start_soon(cell.run)
        await cell.started.wait()
        if cell.start_error is not None:
            raise RayTaskError.from_exception(cell.start_error, f"{cell.ref!r} start")
        return cell.ref

    # ------------------------------------------------------------ the registry

    def lookup(self, name: str) -> ActorRef | None:
        """The live actor registered as ``name``, or None."""
        cell = self._names.get(name)
        return cell.ref if cell is not None else None

    async def lookup_remote(self, address: str, name: str) -> ActorRef | None:
        """The live actor registered as ``name`` in the system at ``address``, or None."""
        net = await self._network()
        return await net.lookup_remote(address, name)

    @property
    def token(self) -> str | None:
        """The cluster token this system presents to peers (None until it uses the network)."""
        return self._net.token if self._net is not None else None

    async def _network(self) -> Network:
        """The network layer, made and started on first use (the kernel imports none before)."""
        if self._net is None:
            if self._nursery is None:
                raise RuntimeError("this ActorSystem is not running: use `async with tray.ActorSystem() as system`")
            address, token, transport, config = self._net_args
            net = load_factory(self._network_factory)(self, token, transport, config)
            self._net = net
            await net.start(self._nursery, address)
            self.address = net.address
        return self._net

    def actors(self) -> list[ActorRef]:
        """Every live actor, in spawn order."""
        return [c.ref for c in self._cells.values()]

    def cell(self, uid: str) -> Cell | None:
        """The live actor ``uid`` of this system (its cell: what a network layer delivers
        to), or None."""
        return self._cells.get(uid)

    def _forget(self, cell: Cell) -> None:
        self._cells.pop(cell.ref._uid, None)
        name = cell.recipe.name
        if name is not None and self._names.get(name) is cell:
            del self._names[name]

    def dead_letter(self, recipient: ActorRef, msg: tuple, reason: str) -> None:
        """Record a message that will not be handled."""
        self.dead_letter_count += 1
        self.dead_letters.append(DeadLetter(recipient, msg[0], msg[1], msg[2], reason))
        log.debug("dead letter to %r: %s (%s)", recipient, msg[0], reason)

    # ------------------------------------------------------------ stop / kill

    async def stop(self, ref: ActorRef, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop ``ref`` and wait until it is gone.

        It finishes the message in hand (an actor with ``max_concurrency > 1`` cancels
        the async handlers still running, failing their askers), runs ``on_stop``, and
        its queued messages become dead letters. After ``timeout`` seconds it is killed.
        """
        await self._stop_cell(ref._cell, reason, timeout)

    async def kill(self, ref: ActorRef) -> None:
        """Stop ``ref`` at once, without ``on_stop``, and wait until it is gone."""
        cell = ref._cell
        if cell.reason is None:
            cell.kill()
            await cell.done.wait()

    async def _stop_cell(self, cell: Cell, reason: Any, timeout: float | None) -> None:
        if cell.reason is not None:
            return
        cell.post_system(("stop", reason))
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            await cell.done.wait()
        if cell.reason is None:
            log.warning("%r did not stop within %s s: killing it", cell.ref, timeout)
            cell.kill()
            await cell.done.wait()

    def __repr__(self) -> str:
        return f"<ActorSystem {self.uid} actors={len(self._cells)}>"


def unreachable(uid: str, cls_name: str = "?", name: str | None = None, proto: dict | None = None) -> ActorRef:
    """A ref to actor ``uid`` that this process cannot reach: every message to it fails."""
    return ActorRef(uid, cls_name, name, proto or {}, _Unreachable(uid))


class _Unreachable:
    """Stands in for an actor this process cannot reach (its system is gone or elsewhere)."""

    reason = "unreachable"
    watchers: set[Cell] = set()
    links: set[Cell] = set()

    def __init__(self, uid: str) -> None:
        self.uid = uid

    def _err(self, method: str) -> ActorDiedError:
        return ActorDiedError(f"actor {self.uid} is not reachable from this process; {method} not sent")

    async def ask(self, method: str, args: tuple, kwargs: dict, timeout: float | None, into: Any = None) -> Any:
        raise self._err(method)

    async def tell(self, method: str, args: tuple, kwargs: dict) -> None:
        raise self._err(method)

    def tell_nowait(self, method: str, args: tuple, kwargs: dict) -> None:
        raise self._err(method)


def resolve_ref(
    uid: str, cls_name: str, name: str | None, proto: tuple[tuple[str, bool], ...], address: str | None = None
) -> ActorRef:
    """Rebuild a pickled ActorRef: bound to its actor if it lives in this process, else
    to a proxy that reaches it through the network (``address`` is its system's)."""
    resolver = remote_resolver.get()
    if resolver is not None:  # unpickling a peer's message: the receiving system decides
        return resolver(uid, cls_name, name, dict(proto), address)
    system = _systems.get(uid.partition(":")[0])
    cell = system._cells.get(uid) if system is not None else None
    if cell is not None:
        return cell.ref
    if system is None and address is not None:
        for s in list(_systems.values()):
            if s._net is not None:
                return s._net.resolve(uid, cls_name, name, dict(proto), address)
    return unreachable(uid, cls_name, name, dict(proto))

