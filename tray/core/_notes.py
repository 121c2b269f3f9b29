"""Notes: telling another process something that needs no answer."""

from __future__ import annotations

from typing import Any

import trio

from ..exceptions import MailboxFull, RayError


class Notes:
    """Sends notes (a lease given back, an actor ready) for the owner's parts. If the
    receiver is gone, so is the need; if the connection is backed up, the note waits its
    turn in the background instead of being lost."""

    __slots__ = ("nursery",)

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery

    def __call__(self, method: Any, *args: Any) -> None:
        try:
            method.tell_nowait(*args)
        except MailboxFull:
            self.nursery.start_soon(_note_later, method, args)
        except RayError:
            pass


async def _note_later(method: Any, args: tuple) -> None:
    try:
        await method.tell(*args)
    except RayError:
        pass
