"""The runtime of one actor: its mailbox, its message loop, its death.

Hot paths (ask, tell, the loop) avoid trio checkpoints where they are not needed: a
send that finds room queues the message and wakes a parked actor without yielding, and
the actor drains its mailbox in batches, yielding once per batch. That is what makes a
tell cheaper than a bare memory-channel send.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio
from outcome import Error, Value
from trio.lowlevel import Abort, ParkingLot, checkpoint, current_task, reschedule, wait_task_rescheduled

from ..exceptions import ActorDiedError, AskTimeoutError, MailboxFull, RayTaskError
from ._actor import Actor, protocol
from ._mailbox import ACCEPTED, DROPPED, EVICTED, Mailbox, MailboxSpec
from ._ref import ActorRef

if TYPE_CHECKING:
    from typing import Protocol

    from ._system import ActorSystem

    class Watcher(Protocol):
        """Told of an actor's death: a local Cell, or a peer that watches it from another process."""

        def post_system(self, msg: tuple) -> None: ...

log = logging.getLogger("tray.actors")

BATCH = 256  # user messages handled between two yields to the scheduler


@attrs.frozen
class Recipe:
    """Everything needed to start an actor — again, when a supervisor restarts it."""

    cls: type[Actor]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str | None
    mailbox: MailboxSpec
    max_concurrency: int
    link: ActorRef | None
    decider: Any  # Callable[[Exception], str] | None


def describe(reason: Any) -> str:
    """A reason as a short phrase for messages."""
    if isinstance(reason, BaseException):
        return f"crashed with {type(reason).__name__}: {reason}"
    return str(reason)


class _Reply:
    """Where an ask waits: the asking task, until the reply reschedules it."""

    __slots__ = ("task",)

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task: trio.lowlevel.Task | None = task

    def abort(self, _raise_cancel: Any) -> Abort:
        self.task = None
        return Abort.SUCCEEDED

    def send(self, result: Value | Error) -> None:
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, result)


class Cell:
    """One incarnation of an actor, hosted by an :class:`~tray.actors.ActorSystem`."""

    def __init__(self, system: ActorSystem, recipe: Recipe, uid: str, restart_reason: BaseException | None) -> None:
        self.system = system
        self.recipe = recipe
        self.restart_reason = restart_reason
        self.proto = protocol(recipe.cls)
        self.ref = ActorRef(uid, recipe.cls.__name__, recipe.name, self.proto, self)
        self.mailbox = Mailbox(recipe.mailbox)
        self.capacity = recipe.mailbox.capacity
        self.concurrent = recipe.max_concurrency > 1
        self.reason: Any = None  # None while alive; the exit reason once dead
        self.instance: Actor | None = None
        self.task: trio.lowlevel.Task | None = None
        self.parked = False
        self.space = ParkingLot()  # senders waiting for room in a full "block" mailbox
        self.watchers: set[Watcher] = set()
        self.links: set[Cell] = set()
        self.parent: Cell | None = recipe.link._cell if recipe.link is not None else None
        self.current: _Reply | None = None
        self.inflight: set[_Reply] = set()
        self.scope = trio.CancelScope()
        self.nursery: trio.Nursery | None = None
        self.started = trio.Event()
        self.done = trio.Event()
        self.start_error: BaseException | None = None
        self.received: dict[str, int] = {}  # messages from other processes, by method (RPC rates)

    # ---------------------------------------------------------------- sending

    async def ask(self, method: str, args: tuple, kwargs: dict, timeout: float | None, into: Any = None) -> Any:
        if timeout is not None:
            with trio.move_on_after(timeout):
                return await self.ask(method, args, kwargs, None)
            raise AskTimeoutError(f"{self.ref!r}.{method} did not reply within {timeout} s")
        task = current_task()
        if task is self.task and not self.concurrent:
            raise RuntimeError(f"{self.ref!r} asked itself ({method}): it would wait for itself forever")
        reply = _Reply(task)
        msg = (method, args, kwargs, reply)
        if not self.offer(msg):
            await self.admit(msg)
        return await wait_task_rescheduled(reply.abort)

    async def tell(self, method: str, args: tuple, kwargs: dict) -> None:
        msg = (method, args, kwargs, None)
        if not self.offer(msg):
            await self.admit(msg)

    def offer(self, msg: tuple) -> bool:
        """Queue ``(method, args, kwargs, reply)`` if there is room now, without yielding.

        False: the caller must ``await admit(msg)``, which applies the overflow policy.
        ``reply`` is None (a tell) or has ``send(outcome)`` (the transport passes its own).
        """
        user = self.mailbox.user
        if self.reason is None and len(user) < self.capacity:
            user.append(msg)
            if self.parked:
                self.parked = False
                reschedule(self.task)  # type: ignore[arg-type]  # parked: the loop's task is set
            return True
        return False

    def deliver(self, msg: tuple) -> bool:
        """``offer`` for a message that came from another system: when the actor is idle
        (parked, its mailbox empty) and the handler is sync, handle it at once in the
        caller's task. The actor would have run it next, alone, all the same; this spares
        a task switch per message from the network (the reader delivering it runs it)."""
        method, args, kwargs, reply = msg
        received = self.received
        received[method] = received.get(method, 0) + 1
        if not self.parked or self.reason is not None or self.proto.get(method, True):
            return self.offer(msg)
        self.current = reply
        try:
            result = getattr(self.instance, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; _failed sorts it out
            self.current = None
            crash = self._failed(exc, reply, method)
            if crash is not None:
                self.post_system(("stop", crash))
        else:
            self.current = None
            if reply is not None:
                reply.send(Value(result))
        return True

    def tell_nowait(self, method: str, args: tuple, kwargs: dict) -> None:
        if not self._offer((method, args, kwargs, None), can_wait=False):
            raise MailboxFull(f"{self.ref!r} mailbox is full ({self.capacity} messages); {method} not sent")

    async def admit(self, msg: tuple) -> None:
        """Queue ``msg`` per the overflow policy: wait for room, drop, evict, or raise."""
        while not self._offer(msg, can_wait=True):
            await self.space.park()

    def _offer(self, msg: tuple, can_wait: bool) -> bool:
        """Queue ``msg`` or dispose of it per policy; False means: wait for room and retry."""
        reply = msg[3]
        if self.reason is not None:
            self.system.dead_letter(self.ref, msg, f"actor is dead ({describe(self.reason)})")
            if reply is not None:
                raise ActorDiedError(f"{self.ref!r} is dead ({describe(self.reason)}); {msg[0]} not handled")
            return True
        verdict = self.mailbox.offer(msg)
        if verdict == ACCEPTED or verdict == EVICTED:
            if verdict == EVICTED:
                self._refuse(self.mailbox.evicted, "evicted from a full mailbox (drop_old)")
            self.wake()
            return True
        if verdict == DROPPED:
            self.system.dead_letter(self.ref, msg, "mailbox full (drop_new)")
            if reply is not None:
                raise MailboxFull(f"{self.ref!r} mailbox is full (drop_new); {msg[0]} dropped")
            return True
        if can_wait and self.recipe.mailbox.overflow == "block":
            return False
        raise MailboxFull(f"{self.ref!r} mailbox is full ({self.capacity} messages); {msg[0]} refused")

    def _refuse(self, msg: tuple, why: str) -> None:
        """Turn a queued message into a dead letter, failing its asker."""
        self.system.dead_letter(self.ref, msg, why)
        reply = msg[3]
        if reply is not None:
            err = ActorDiedError if self.reason is not None else MailboxFull
            reply.send(Error(err(f"{self.ref!r}: {msg[0]} {why}")))

    def wake(self) -> None:
        if self.parked:
            self.parked = False
            reschedule(self.task)  # type: ignore[arg-type]  # parked: the loop's task is set

    def post_system(self, msg: tuple) -> None:
        """Queue a system message (stop, down, exit) ahead of every user message."""
        if self.reason is None:
            self.mailbox.system.append(msg)
            self.wake()

    # ------------------------------------------------------ monitors and links

    def monitor(self, ref: ActorRef) -> None:
        target = ref._cell
        if target.reason is not None:
            self.post_system(("down", ref, "noproc"))
        else:
            target.watchers.add(self)

    def demonitor(self, ref: ActorRef) -> None:
        ref._cell.watchers.discard(self)

    def link(self, ref: ActorRef) -> None:
        target = ref._cell
        if target.reason is not None:
            self.post_system(("exit", ref, "noproc"))
        elif target is not self:
            target.links.add(self)
            self.links.add(target)

    def unlink(self, ref: ActorRef) -> None:
        ref._cell.links.discard(self)
        self.links.discard(ref._cell)

    def kill(self) -> None:
        """Stop at once: no ``on_stop``, queued and in-flight messages fail."""
        self.scope.cancel()

    # -------------------------------------------------------------- the actor

    async def run(self) -> None:
        self.task = current_task()
        reason: Any = "killed"
        try:
            with self.scope:
                async with trio.open_nursery() as self.nursery:
                    if await self._start():
                        if self.concurrent:
                            self.limiter = trio.Semaphore(self.recipe.max_concurrency)
                        reason = await self._serve()
                    else:
                        reason = self.start_error
                        for other in self.links:  # the spawner hears of it as spawn's exception
                            other.links.discard(self)
                        self.links.clear()
                    self.nursery.cancel_scope.cancel()  # handlers and background tasks still running end
                if self.start_error is not None:
                    return
                if isinstance(reason, BaseException) and self.parent is None:  # else the parent reports it
                    log.warning("%r crashed", self.ref, exc_info=reason)
                await self._hook("on_stop")
        finally:
            self._die("killed" if self.scope.cancel_called else reason)
            self.started.set()  # a spawner still waiting learns of the failure now

    async def _start(self) -> bool:
        cls = self.recipe.cls
        try:
            inst = cls.__new__(cls)
            inst._tray_cell = self
            inst.__init__(*self.recipe.args, **self.recipe.kwargs)  # type: ignore[misc]  # __new__ then __init__, as type.__call__ does
            self.instance = inst
            if self.restart_reason is not None:
                r = inst.on_restart(self.restart_reason)
            else:
                r = inst.on_start()
            if inspect.isawaitable(r):
                await r
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; the spawner gets it
            self.start_error = exc
            return False  # the spawner hears of it once the cell is dead (run's finally)
        self.started.set()
        return True

    async def _hook(self, name: str, *args: Any) -> Any:
        """Run a lifecycle hook; return the crash reason if it failed and that is fatal."""
        try:
            r = getattr(self.instance, name)(*args)
            if inspect.isawaitable(r):
                await r
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; _failed sorts it out
            return self._failed(exc, None, name)
        return None

    async def _serve(self) -> Any:
        """Handle messages until a stop or crash; return the exit reason."""
        mb = self.mailbox
        user, sysq, space = mb.user, mb.system, self.space
        inst, proto = self.instance, self.proto
        while True:
            if sysq:
                reason = await self._on_system(sysq.popleft())
                if reason is not None:
                    return reason
                continue
            if not user:
                self.parked = True
                await wait_task_rescheduled(self._abort_park)
                continue
            budget = BATCH
            while user and not sysq and budget:
                budget -= 1
                method, args, kwargs, reply = user.popleft()
                if space:
                    space.unpark()
                if self.concurrent and proto[method]:
                    await self.limiter.acquire()
                    self.nursery.start_soon(  # type: ignore[union-attr]  # a concurrent actor's loop runs in its nursery
                        self._handle_concurrent, method, args, kwargs, reply
                    )
                    continue
                self.current = reply
                try:
                    result = getattr(inst, method)(*args, **kwargs)
                    if proto[method]:
                        result = await result
                except Exception as exc:  # noqa: BLE001 - user code may raise anything; _failed sorts it out
                    self.current = None
                    crash = self._failed(exc, reply, method)
                    if crash is not None:
                        return crash
                else:
                    self.current = None
                    if reply is not None:
                        reply.send(Value(result))
            if user or sysq:
                await checkpoint()

    def _abort_park(self, _raise_cancel: Any) -> Abort:
        self.parked = False
        return Abort.SUCCEEDED

    async def _handle_concurrent(self, method: str, args: tuple, kwargs: dict, reply: _Reply | None) -> None:
        if reply is not None:
            self.inflight.add(reply)
        try:
            result = await getattr(self.instance, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; _failed sorts it out
            crash = self._failed(exc, reply, method)
            if crash is not None:
                self.post_system(("stop", crash))
        else:
            if reply is not None:
                reply.send(Value(result))
        finally:
            self.limiter.release()
        self.inflight.discard(reply)  # (if cancelled, _die fails it)

    def start_soon(self, afn: Any, *args: Any) -> None:
        """Run ``afn(*args)`` beside the message loop until the actor stops; if it raises, the actor crashes."""
        if self.reason is not None or self.nursery is None:
            raise RuntimeError(f"{self.ref!r} is not running; it cannot start background tasks")
        self.nursery.start_soon(self._background, afn, args)

    async def _background(self, afn: Any, args: tuple) -> None:
        try:
            await afn(*args)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything; it crashes the actor
            self.post_system(("stop", exc))

    def _failed(self, exc: Exception, reply: _Reply | None, method: str) -> Any:
        """A handler raised: tell the asker; return the crash reason if the decider says so."""
        if reply is not None:
            reply.send(Error(RayTaskError.from_exception(exc, f"{self.ref!r}.{method}")))
        decider = self.recipe.decider
        try:
            directive = "resume" if decider is None else decider(exc)
        except Exception as decider_exc:
            log.error("%r: decider failed on %r", self.ref, exc, exc_info=decider_exc)
            return exc
        if directive == "resume":
            if reply is None:
                log.warning("%r.%s raised (nobody asked, the actor goes on)", self.ref, method, exc_info=exc)
            return None
        return exc

    async def _on_system(self, msg: tuple) -> Any:
        kind = msg[0]
        if kind == "stop":
            return msg[1]
        ref, reason = msg[1], msg[2]
        if kind == "down":
            return await self._hook("on_down", ref, reason)
        # "exit" from a linked actor
        self.links.discard(ref._cell)
        if self.instance.trap_exits:  # type: ignore[union-attr]
            return await self._hook("on_exit", ref, reason)
        return None if reason == "normal" else reason

    def _die(self, reason: Any) -> None:
        """Final bookkeeping; runs exactly once, without awaiting."""
        if self.reason is not None:
            return
        self.reason = reason
        self.system._forget(self)
        self.instance = None
        why = f"died ({describe(reason)})"
        pending = list(self.inflight)
        if self.current is not None:
            pending.append(self.current)
        for reply in pending:
            reply.send(Error(ActorDiedError(f"{self.ref!r} {why} while handling this call")))
        for msg in self.mailbox.drain():
            self._refuse(msg, f"not handled: the actor {why}")
        self.mailbox.system.clear()
        self.space.unpark_all()
        for watcher in self.watchers:
            watcher.post_system(("down", self.ref, reason))
        for other in self.links:
            other.post_system(("exit", self.ref, reason))
        self.watchers.clear()
        self.links.clear()
        self.done.set()
