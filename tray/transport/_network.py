"""A system's network layer: its listener, its peers, and the refs that reach them.

:class:`Network` is the kernel's default network (``tray.actors._network.Network`` is the
protocol it meets), made by an :class:`~tray.actors.ActorSystem` on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .. import _config
from ..actors import ActorRef
from ..actors._system import unreachable
from ..exceptions import ActorDiedError
from ._base import Listener, Stream, Transport
from ._codec import Kind, dumps
from ._config import NetConfig
from ._peer import Peer
from ._remote import RemoteCell, _Waiter
from ._sockets import SocketTransport

if TYPE_CHECKING:
    from ..actors import ActorSystem

log = logging.getLogger("tray.transport")

TOKEN_ENV = _config.env_name("cluster_token")


def _scheme(address: str) -> str:
    return address.partition("://")[0]


class Network:
    """Connects one :class:`~tray.actors.ActorSystem` to its peers."""

    def __init__(
        self, system: ActorSystem, token: str | bytes | None, transport: Transport | None, config: NetConfig | None
    ) -> None:
        self.system = system
        if token is None:
            token = _config.get("cluster_token")
        if token is None:
            token = os.urandom(16).hex()  # secrets' token_hex, without its hmac import
            log.info("no cluster token given (nor %s): generated one; peers must be given system.token", TOKEN_ENV)
        self.token = token if isinstance(token, str) else token.decode()
        self.key = token.encode() if isinstance(token, str) else bytes(token)  # what the handshake MACs with
        self.transports: dict[str, Transport] = {}
        for t in (SocketTransport(), transport):
            if t is not None:
                for s in t.schemes:
                    self.transports[s] = t
        self.config = config or NetConfig()
        self.address: str | None = None
        self.listener: Listener | None = None
        self.peers_by_addr: dict[str, Peer] = {}
        self.peers_by_uid: dict[str, Peer] = {}
        self.peers: set[Peer] = set()
        self.links: dict[bytes, Peer] = {}  # control connections awaiting/holding a data connection
        self.nursery: trio.Nursery = None  # type: ignore[assignment]
        self._token: trio.lowlevel.TrioToken | None = None  # the loop's, for refs unpickled in other threads
        self._resolvers: dict[Peer, Callable[..., ActorRef]] = {}

    def transport_for(self, address: str) -> Transport:
        t = self.transports.get(_scheme(address))
        if t is None:
            raise ValueError(f"no transport for {address!r} (known schemes: {', '.join(sorted(self.transports))})")
        return t

    async def start(self, nursery: trio.Nursery, address: str | None) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self.nursery = await nursery.start(self._run)
        if address is not None:
            self.listener = await self.transport_for(address).listen(address, self._accept, self.nursery)
            self.address = self.listener.address

    async def _run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await trio.sleep_forever()

    async def aclose(self) -> None:
        """Say goodbye to every peer (after flushing what is queued), then stop listening."""
        if self.listener is not None:
            await self.listener.aclose()
        for peer in list(self.peers):
            if peer.ready.is_set() and peer.reason is None:
                peer.post_message(Kind.BYE, 0, None, None, None, [])
        with trio.move_on_after(1.0):
            for peer in list(self.peers):
                while peer.out and peer.reason is None:
                    await trio.sleep(0.001)
        for peer in list(self.peers):
            peer.close("this system shut down")
        self.nursery.cancel_scope.cancel()

    # --------------------------------------------------------------- peers

    async def _accept(self, stream: Stream) -> None:
        peer = Peer(self, None)
        self.peers.add(peer)
        await peer.run_inbound(stream)

    def peer_for(self, address: str) -> Peer:
        """The connection to ``address``, opened in the background if there is none."""
        peer = self.peers_by_addr.get(address)
        if peer is not None and peer.reason is None:
            return peer
        if self._token is not None and not trio.lowlevel.in_trio_run():
            # a ref unpickled in a user's thread (a task's arguments): peers are made in the loop
            return trio.from_thread.run_sync(self.peer_for, address, trio_token=self._token)
        peer = Peer(self, address)
        self.peers_by_addr[address] = peer
        self.peers.add(peer)
        self.nursery.start_soon(peer.run_outbound, self.transport_for(address))
        return peer

    def peer_ready(self, peer: Peer) -> None:
        assert peer.uid is not None
        self.peers_by_uid.setdefault(peer.uid, peer)
        if peer.address is not None:
            self.peers_by_addr.setdefault(peer.address, peer)
        for uid, cell in list(peer.cells.items()):
            if uid.partition(":")[0] != peer.uid:  # that address now hosts another system
                cell.died("noproc")

    def peer_gone(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._resolvers.pop(peer, None)
        if peer.uid is not None and self.peers_by_uid.get(peer.uid) is peer:
            del self.peers_by_uid[peer.uid]
        if peer.address is not None and self.peers_by_addr.get(peer.address) is peer:
            del self.peers_by_addr[peer.address]

    # ---------------------------------------------------------------- refs

    def resolver_for(self, peer: Peer) -> Callable[..., ActorRef]:
        r = self._resolvers.get(peer)
        if r is None:

            def r(uid: str, cls_name: str, name: str | None, proto: dict, address: str | None) -> ActorRef:
                return self.resolve(uid, cls_name, name, proto, address, peer)

            self._resolvers[peer] = r
        return r

    def resolve(
        self, uid: str, cls_name: str, name: str | None, proto: dict, address: str | None, via: Peer | None = None
    ) -> ActorRef:
        """The ref of actor ``uid`` as seen from this system (a proxy unless it is ours)."""
        sys_uid = uid.partition(":")[0]
        if sys_uid == self.system.uid:
            cell = self.system.cell(uid)
            return cell.ref if cell is not None else unreachable(uid, cls_name, name, proto)
        peer = self.peers_by_uid.get(sys_uid)
        if peer is None or peer.reason is not None:
            if via is not None and via.uid == sys_uid:
                peer = via
            elif address is not None and address != self.address:
                peer = self.peer_for(address)
            else:
                return unreachable(uid, cls_name, name, proto)
        rc = peer.cells.get(uid)
        if rc is None:
            rc = peer.cells[uid] = RemoteCell(peer, uid, cls_name, name, proto, address or peer.address)
            if peer.reason is not None:
                rc.died("noconnection")
            elif peer.uid is not None and peer.uid != sys_uid:
                rc.died("noproc")
        return rc.ref

    # ------------------------------------------------------------ requests

    async def _request(self, address: str, kind: int, head: Any, obj: Any) -> Any:
        peer = self.peer_for(address)
        payload, bufs = dumps(obj) if obj is not None else (None, [])
        corr = peer.next_corr()
        waiter = _Waiter(trio.lowlevel.current_task(), corr, peer)
        if peer.reason is not None:
            raise ActorDiedError(f"no connection to {address} ({peer.reason})")
        peer.pending[corr] = waiter
        peer.post_message(kind, corr, None, head, payload, bufs)
        return await trio.lowlevel.wait_task_rescheduled(waiter.abort)

    async def spawn_remote(self, at: str, cls: type, args: tuple, kwargs: dict, opts: dict) -> ActorRef:
        return await self._request(at, Kind.SPAWN, None, (cls, args, kwargs, opts))

    async def lookup_remote(self, address: str, name: str) -> ActorRef | None:
        return await self._request(address, Kind.LOOKUP, name, None)

    def dead_letter(self, uid: str, method: str, args: tuple, kwargs: dict, why: str) -> None:
        self.system.dead_letter(unreachable(uid), (method, args, kwargs), why)
