"""Why an actor's process died, for callers that did not create it (and so hold no lease
naming its node): every alive node is asked at once; the one that ran it answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ._runtime import Runtime

ASK_TIMEOUT_S = 2.0


async def death_of_executor(rt: Runtime, executor_id: str, fallback: Any) -> str:
    """How the worker hosting ``executor_id`` ended (its node's ``death_of``), or ``fallback``
    (the connection's reason) if no node says so within ``ASK_TIMEOUT_S``."""
    found: list[str] = []
    with trio.move_on_after(ASK_TIMEOUT_S):
        try:
            view = await rt.control.view.ask()
        except Exception:  # noqa: BLE001 - the head is unreachable: the connection's reason is all we have
            return str(fallback)
        async with trio.open_nursery() as nursery:

            async def ask(scheduler: Any) -> None:
                try:
                    why = await scheduler.death_of_executor.ask(executor_id)
                except Exception:  # noqa: BLE001 - that node is gone or busy: another may know
                    return
                if why is not None:
                    found.append(why)
                    nursery.cancel_scope.cancel()

            for scheduler, *_rest in view.values():
                nursery.start_soon(ask, scheduler)
    return found[0] if found else str(fallback)
