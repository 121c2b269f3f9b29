"""A supervision tree run as a long-running service (what ``tray up services.toml`` runs:
the command itself is ``tray._cli.up``).

:func:`serve` starts the tree, logs its start and end on ``tray.up``, and keeps it up until
SIGINT or SIGTERM (it stops the tree in reverse start order: status 0) or until the root
supervisor gives up (status 1).
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import trio

from ..actors import Actor, ActorRef, ActorSystem
from ._spec import SupervisorSpec
from ._strategy import is_abnormal
from ._supervisor import Supervisor

log = logging.getLogger("tray.up")


class _RootWatcher(Actor):
    """Tells the service when the root supervisor is gone, and why."""

    def __init__(self, root: ActorRef, gone: trio.Event, outcome: dict[str, Any]) -> None:
        self.root, self.gone, self.outcome = root, gone, outcome

    def on_start(self) -> None:
        self.monitor(self.root)

    def on_down(self, ref: ActorRef, reason: Any) -> None:
        self.outcome["reason"] = reason
        self.gone.set()


async def serve(spec: SupervisorSpec, *, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> int:
    """Start ``spec``'s tree and keep it up until a signal (exit 0) or until the root gives up (1)."""
    async with ActorSystem() as system:
        with trio.open_signal_receiver(*signals) as received:
            try:
                root = await system.spawn(Supervisor, spec, name=spec.name, path=spec.name or "root")
            except Exception as exc:  # noqa: BLE001 - any failure to start is reported as exit status 1
                log.error("the supervision tree failed to start: %s", exc)
                return 1
            gone = trio.Event()
            outcome: dict[str, Any] = {}
            await system.spawn(_RootWatcher, root, gone, outcome)
            log.info("up: %d child(ren) started; SIGINT or SIGTERM stops", len(spec.children))
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for signum in received:
                        log.info("received %s: shutting down", signal.Signals(signum).name)
                        nursery.cancel_scope.cancel()
                        return

                async def on_root_gone() -> None:
                    await gone.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                nursery.start_soon(on_root_gone)
            if gone.is_set():
                reason = outcome.get("reason")
                log.error("the root supervisor exited: %s", reason)
                return 1 if is_abnormal(reason) else 0
            await system.stop(root, "shutdown")
            log.info("shut down cleanly")
            return 0
