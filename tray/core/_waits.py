"""An owner's waits on objects: until a value is ready here, fetching a borrowed one from
its owner (one fetch per object at a time); and failing the objects a task will not make."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import trio

from ..actors._crossing import wake
from ..exceptions import ActorDiedError, OwnerDiedError
from ._objects import FAILED, PENDING, READY

if TYPE_CHECKING:
    from ..actors import ActorRef
    from ._objects import ObjectTable


class ObjectWaits:
    """Waiting for objects in the loop, for the owner's parts and for borrowers."""

    def __init__(self, table: ObjectTable, nursery: trio.Nursery) -> None:
        self.table, self.nursery = table, nursery
        self._fetching: set[str] = set()

    def fail(self, oids: list[str], err: BaseException) -> None:
        """These objects will not be made: whoever gets them gets ``err``."""
        for oid in oids:
            self.table.resolve(oid, None, err)

    async def wait_deps(self, deps: list[tuple[str, ActorRef | None]]) -> BaseException | None:
        """Wait until every top-level ObjectRef argument is ready; the first error, if any."""
        for oid, owner in deps:
            entry = await self.wait_ready(oid, owner)
            if entry is not None and entry.state == FAILED:
                return entry.error
        return None

    async def wait_ready(self, oid: str, owner: ActorRef | None) -> Any:
        """The entry of ``oid`` once it is ready or failed (fetching a borrowed value)."""
        table = self.table
        entry = table.entries.get(oid)
        if entry is None:
            return None
        if entry.state == PENDING and entry.owner is not None:
            await self.fetch(oid, entry.owner)
        elif entry.state == PENDING:
            done = trio.Event()
            if table.when_done(oid, functools.partial(wake, trio.lowlevel.current_trio_token(), done.set)):
                await done.wait()
        return table.entries.get(oid)

    async def fetch(self, oid: str, owner: ActorRef) -> None:
        """Get a borrowed object's value from its owner into our table."""
        try:
            state, payload = await owner.get_object.ask(oid)
        except ActorDiedError as exc:
            self.table.resolve(oid, None, OwnerDiedError(f"the owner of object {oid} died ({exc})"))
            return
        if state == READY:
            self.table.resolve(oid, payload, owned=False)  # a value of the owner's: never ours to free
        else:
            self.table.resolve(oid, None, payload)

    def ensure_fetch(self, oid: str, owner: ActorRef) -> None:
        """Start fetching ``oid`` from ``owner`` unless that is under way."""
        if oid not in self._fetching:
            self._fetching.add(oid)
            self.nursery.start_soon(self._fetch_once, oid, owner)

    async def _fetch_once(self, oid: str, owner: ActorRef) -> None:
        try:
            await self.fetch(oid, owner)
        finally:
            self._fetching.discard(oid)
