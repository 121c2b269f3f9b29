"""``tray up services.toml``: run a supervision tree as a long-running service.

Logs every start, crash (with its traceback) and restart to stderr; SIGINT or SIGTERM
stops the tree in reverse start order and exits 0. A bad config exits 2 with a message
naming the file, the child and the field; a tree that fails to start or gives up
(restart intensity exceeded at the root) exits 1.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from ..actors import Actor, ActorRef, ActorSystem
from ._config import load_config
from ._errors import ConfigError
from ._spec import SupervisorSpec
from ._strategy import is_abnormal
from ._supervisor import Supervisor

log = logging.getLogger("tray.up")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            except Exception as exc:
                log.error("the supervision tree failed to start: %s", exc)
                return 1
            gone, outcome = trio.Event(), {}
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


def up(config: str | Path, *, log_level: str = "INFO") -> int:
    """The ``tray up`` command: load ``config``, run its tree, return the exit status."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format=LOG_FORMAT, stream=sys.stderr)
    try:
        spec = load_config(config)
    except ConfigError as e:
        print(f"tray up: error: {e}", file=sys.stderr)
        return 2
    log.info("starting %s (strategy %s)", config, spec.strategy)
    return trio.run(serve, spec)
