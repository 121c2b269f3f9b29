"""``tray.actor.exit_actor()``: an actor ends itself, gracefully, from one of its methods.

The exit travels as an exception (Ray's design too): it unwinds the method like any other,
so ``finally`` blocks and context managers run; the worker sees it reach the top of the
call and ends the actor for good (see ``_worker._end_actor``)."""

from __future__ import annotations

from . import _process


class ActorExit(SystemExit):
    """Raised by ``exit_actor()``; a SystemExit, so code that catches ``Exception`` lets it by."""

    tray_exit_actor = True


def exit_actor() -> None:
    """End the current actor: the call that runs this fails with ActorDiedError naming the
    exit, as do the calls still waiting; the actor is not restarted, whatever its
    ``max_restarts``. Raises TypeError outside an actor (as Ray does)."""
    rt = _process.current()
    if rt is None or getattr(rt, "current_actor_id", None) is None:
        raise TypeError("exit_actor() was called outside an actor: it ends the actor whose method calls it")
    raise ActorExit(0)
