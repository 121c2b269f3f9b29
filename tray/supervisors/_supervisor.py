"""The ``Supervisor`` actor: applies the pure decisions of ``_strategy``/``_intensity``/``_backoff``.

It traps exits, spawns each child linked to itself with a decider built from the
child's spec, and handles a child's exit inside ``on_exit`` — one exit at a time, as an
OTP supervisor does — so its view of the children is never half-updated when it answers
``which_children`` or ``child``. Backoff waits run as background tasks that send the
supervisor a message when they end, so it keeps answering (and shows "restarting") meanwhile.
"""

from __future__ import annotations

import itertools
import logging
import random
import weakref
from typing import Any

import trio

from ..actors import Actor, ActorRef
from ..exceptions import ActorDiedError, RayTaskError
from ._backoff import BackoffState
from ._errors import ConfigError, RestartIntensityExceeded
from ._intensity import RestartIntensity
from ._spec import ChildSpec, SupervisorSpec
from ._strategy import affected, is_abnormal, resolve_directive, should_restart

log = logging.getLogger("tray.supervisors")

RUNNING, RESTARTING, STOPPED, FAILED = "running", "restarting", "stopped", "failed"


class _Child:
    """The supervisor's record of one child: its spec and its current incarnation."""

    __slots__ = ("spec", "id", "args", "ref", "last", "status", "backoff", "window")

    def __init__(self, spec: ChildSpec, id: str, args: tuple[Any, ...], rng: random.Random) -> None:
        self.spec, self.id, self.args = spec, id, args
        self.ref: ActorRef | None = None
        self.last: ActorRef | None = None  # the latest incarnation, dead or alive (respawn needs it)
        self.status = STOPPED
        self.backoff = BackoffState(spec.backoff, rng) if spec.backoff is not None else None
        self.window = RestartIntensity(spec.intensity, spec.period) if spec.intensity is not None else None  # type: ignore[arg-type]


def _child_decider(spec: ChildSpec) -> Any:
    """The kernel decider for a child: crash on anything but "resume".

    A supervisor child's handlers raise only for bad requests (its failures arrive as
    exit reasons), so by default they resume; a worker's default is "restart" (OTP).
    """
    default = "resume" if spec.type == "supervisor" else "restart"
    decider = spec.decider
    if decider is None and default == "restart":
        return _crash
    return lambda exc: resolve_directive(decider, exc, default)


def _crash(exc: BaseException) -> str:
    return "restart"


class Supervisor(Actor):
    """Starts, watches and restarts children per a :class:`SupervisorSpec`.

    ``sup = await system.spawn(Supervisor, spec)``; then ``which_children``, ``child``,
    ``count_children``, ``start_child``, ``terminate_child``, ``restart_child`` and
    ``delete_child`` (OTP's API) are its messages. ``backoff_elapsed`` is internal.
    """

    trap_exits = True

    def __init__(self, spec: SupervisorSpec, *, path: str | None = None, rng: random.Random | None = None) -> None:
        if not isinstance(spec, SupervisorSpec):
            raise TypeError(f"Supervisor needs a SupervisorSpec, got {spec!r}")
        self.spec = spec
        self._path = path
        self._rng = rng if rng is not None else random.Random()
        self._children: list[_Child] = []
        self._by_ref: dict[ActorRef, _Child] = {}
        self._retired: weakref.WeakSet[ActorRef] = weakref.WeakSet()  # refs whose exit is no news
        self._intensity = RestartIntensity(spec.intensity, spec.period)
        self._pending: dict[int, tuple[list[_Child], Any]] = {}  # backoff token -> (children, reason)
        self._tokens = itertools.count(1)
        self._dynamic_ids = itertools.count(1)
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def label(self) -> str:
        """How logs name this supervisor: its path in the tree, its name, or its ref."""
        return self._path or self.spec.name or repr(self.ref)

    async def on_start(self) -> None:
        if self.spec.strategy == "simple_one_for_one":
            return
        for spec in self.spec.children:
            child = _Child(spec, spec.id, (), self._rng)
            self._children.append(child)
            try:
                await self._spawn(child, None)
            except Exception as exc:
                log.error("%s: child %r failed to start; stopping the others", self.label, spec.id, exc_info=exc)
                self._children.remove(child)
                await self._stop_all()
                # Re-raise the child's own exception (spawn wraps it once more for our spawner),
                # so `except TheError` works on `spawn(Supervisor, ...)` too.
                cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
                cause.add_note(f"while supervisor {self.label} started its child {spec.id!r}")
                raise cause from None

    async def on_stop(self) -> None:
        self._closing = True
        self._pending.clear()
        await self._stop_all()

    async def on_exit(self, ref: ActorRef, reason: Any) -> None:
        child = self._by_ref.pop(ref, None)
        if child is None:
            if self._closing or ref in self._retired or reason == "normal":
                return
            # A link that is not a child (our parent, or whoever linked us) failed: go with it.
            log.error("%s: linked %r exited (%s); stopping", self.label, ref, _describe(reason))
            await self._exit(reason)
            return
        self._retired.add(ref)
        child.ref, child.last = None, ref
        if self._closing:
            return
        try:
            await self._child_exited(child, reason)
        except Exception as exc:  # a bug here must not leave a half-managed tree
            log.critical("%s: failed handling the exit of %r", self.label, child.id, exc_info=exc)
            await self._exit(exc)

    # ------------------------------------------------------------------ messages

    def which_children(self) -> list[tuple[str, ActorRef | None, str]]:
        """``(id, ref or None, status)`` per child in start order; status is "running",
        "restarting" (waiting for a backoff or mid-restart), "stopped" or "failed" (given up)."""
        return [(c.id, c.ref, c.status) for c in self._children]

    def child(self, id: str) -> ActorRef | None:
        """The current ref of child ``id`` (None while it is not running)."""
        return self._find(id).ref

    def count_children(self) -> dict[str, int]:
        """OTP's counts: specs, active (running), supervisors, workers."""
        kids = self._children
        return {
            "specs": len(self.spec.children) if self.spec.strategy == "simple_one_for_one" else len(kids),
            "active": sum(c.ref is not None for c in kids),
            "supervisors": sum(c.spec.type == "supervisor" for c in kids),
            "workers": sum(c.spec.type == "worker" for c in kids),
        }

    async def start_child(self, *args: Any) -> ActorRef:
        """simple_one_for_one: start a child of the template with its args plus ``args``;
        other strategies: add the :class:`ChildSpec` ``args[0]`` as the last child and start it."""
        if self._closing:
            raise RuntimeError(f"supervisor {self.label} is shutting down")
        if self.spec.strategy == "simple_one_for_one":
            template = self.spec.children[0]
            child = _Child(template, f"{template.id}#{next(self._dynamic_ids)}", args, self._rng)
        else:
            if len(args) != 1 or not isinstance(args[0], ChildSpec):
                raise TypeError(f"start_child takes one ChildSpec under {self.spec.strategy}, got {args!r}")
            spec = args[0]
            if any(c.id == spec.id for c in self._children):
                raise ConfigError("id", "a child with this id already exists", child=spec.id)
            if spec.significant and self.spec.auto_shutdown == "never":
                raise ConfigError("significant", "this supervisor's auto_shutdown is 'never'", child=spec.id)
            child = _Child(spec, spec.id, (), self._rng)
        self._children.append(child)
        try:
            return await self._spawn(child, None)
        except Exception:
            self._children.remove(child)
            raise

    async def terminate_child(self, id_or_ref: str | ActorRef) -> None:
        """Stop a child (within its shutdown spec); a static one keeps its spec, stopped."""
        child = self._find_any(id_or_ref)
        self._unpend(child)
        await self._stop_child(child)

    async def restart_child(self, id: str) -> ActorRef:
        """Start a stopped static child again (OTP's restart_child)."""
        child = self._find(id)
        if child.ref is not None or child.status == RESTARTING:
            raise RuntimeError(f"child {id!r} is {child.status}; terminate it first")
        return await self._spawn(child, None)

    def delete_child(self, id: str) -> None:
        """Forget a stopped static child's spec."""
        child = self._find(id)
        if child.ref is not None or child.status == RESTARTING:
            raise RuntimeError(f"child {id!r} is {child.status}; terminate it first")
        self._children.remove(child)

    async def backoff_elapsed(self, token: int) -> None:
        """Internal: a backoff delay is over; restart who still waits on it."""
        entry = self._pending.pop(token, None)
        if entry is None or self._closing:
            return
        group, reason = entry
        group = [c for c in group if c in self._children and c.status == RESTARTING]
        await self._restart_group(group, reason, wait=False)

    # ------------------------------------------------------------------ decisions

    async def _child_exited(self, child: _Child, reason: Any) -> None:
        now = trio.current_time()
        directive = "restart"
        if isinstance(reason, BaseException):
            directive = resolve_directive(child.spec.decider, reason)
            if directive == "resume":  # too late to resume a dead child: restart it
                directive = "restart"
        if is_abnormal(reason):
            log.error("%s: child %r (%r) %s", self.label, child.id, child.last, _describe(reason),
                      exc_info=reason if isinstance(reason, BaseException) else None)
        else:
            log.info("%s: child %r (%r) exited (%s)", self.label, child.id, child.last, reason)
        if directive == "escalate":
            log.error("%s: escalating the failure of child %r", self.label, child.id)
            await self._exit(reason)
            return
        if directive == "stop" or not should_restart(child.spec.restart, reason):
            self._drop(child)
            await self._auto_shutdown(child)
            return
        if child.window is not None and child.window.add(now):
            log.error("%s: child %r restarted more than %s times within %s s; giving up on it",
                      self.label, child.id, child.spec.intensity, child.spec.period)
            child.status = FAILED
            await self._auto_shutdown(child)
            return
        if self._intensity.add(now):
            await self._give_up(child, reason)
            return
        ids = affected(self.spec.strategy, [c.id for c in self._children], child.id)
        group = [self._find(i) for i in ids]
        for other in reversed(group):
            if other is not child:
                await self._stop_child(other)
        group = [c for c in group if c is child or (c in self._children and c.status != FAILED)]
        await self._restart_group(group, reason, child)

    async def _restart_group(
        self, group: list[_Child], reason: Any, trigger: _Child | None = None, wait: bool = True
    ) -> None:
        """Start ``group`` in order, after the trigger's backoff unless ``wait`` is false;
        a start failure counts as another restart and the group goes down and tries again."""
        while group:
            for c in group:
                self._unpend(c)
                c.status = RESTARTING
            trigger = trigger or group[0]
            delay = 0.0
            if wait and trigger.backoff is not None:
                delay = trigger.backoff.next_delay(trio.current_time())
            if delay > 0:
                token = next(self._tokens)
                self._pending[token] = (group, reason)
                log.info("%s: restarting %s in %.3g s", self.label, ", ".join(repr(c.id) for c in group), delay)
                await self._after(delay, token)
                return
            started: list[_Child] = []
            try:
                for c in group:
                    await self._spawn(c, reason)
                    started.append(c)
                return
            except Exception as exc:
                failed = group[len(started)]
                log.error("%s: child %r failed to restart", self.label, failed.id, exc_info=exc)
                reason, trigger, wait = exc, failed, True
                if self._intensity.add(trio.current_time()):
                    await self._give_up(failed, exc)
                    return
                for c in reversed(started):
                    await self._stop_child(c)
                group = [c for c in group if c in self._children]

    async def _give_up(self, child: _Child, reason: Any) -> None:
        spec = self.spec
        err = RestartIntensityExceeded(self.label, child.id, spec.intensity, spec.period, reason)
        log.error("%s; stopping all children and escalating", err)
        await self._exit(err)

    async def _auto_shutdown(self, child: _Child) -> None:
        """A significant child is gone for good: maybe stop this supervisor (OTP's auto_shutdown)."""
        mode = self.spec.auto_shutdown
        if not child.spec.significant or mode == "never":
            return
        if mode == "all_significant" and any(
            c.spec.significant and c.status in (RUNNING, RESTARTING) for c in self._children
        ):
            return
        log.info("%s: significant child %r exited; shutting down (%s)", self.label, child.id, mode)
        await self._exit("shutdown")

    # ------------------------------------------------------------------ effects

    async def _exit(self, reason: Any) -> None:
        """Stop every child (reverse order) and exit with ``reason``."""
        self._closing = True
        self._pending.clear()
        await self._stop_all()
        await self.stop(reason)

    async def _spawn(self, child: _Child, reason: Any) -> ActorRef:
        spec = child.spec
        if child.last is not None and reason is not None:
            # A restart: the new incarnation gets on_restart(reason), even after a non-crash exit.
            if not isinstance(reason, BaseException):
                reason = ActorDiedError(f"{child.last!r} exited ({reason})")
            ref = await self.system.respawn(child.last, reason)
        else:
            kwargs = dict(spec.kwargs)
            if isinstance(spec.start, SupervisorSpec):
                kwargs["path"] = f"{self._path or self.spec.name or 'supervisor'}/{child.id}"
            ref = await self.system.spawn(
                spec.actor_class(),
                *spec.start_args(),
                *child.args,
                name=spec.name,
                mailbox=spec.mailbox,
                max_concurrency=spec.max_concurrency,
                link=self.ref,
                decider=_child_decider(spec),
                **kwargs,
            )
        child.ref = child.last = ref
        child.status = RUNNING
        self._by_ref[ref] = child
        if child.backoff is not None:
            child.backoff.started(trio.current_time())
        log.info("%s: %s child %r as %r", self.label, "restarted" if reason is not None else "started", child.id, ref)
        return ref

    async def _stop_child(self, child: _Child) -> None:
        """Stop one child per its shutdown spec; temporary and dynamic children are forgotten."""
        ref = child.ref
        if ref is not None:
            del self._by_ref[ref]
            self._retired.add(ref)
            child.ref = None
            shutdown = child.spec.shutdown
            if shutdown == "brutal_kill":
                await self.system.kill(ref)
            else:
                await self.system.stop(ref, "shutdown", timeout=None if shutdown == "infinity" else shutdown)  # type: ignore[arg-type]
            log.info("%s: stopped child %r (%r)", self.label, child.id, ref)
        self._drop(child)

    def _drop(self, child: _Child) -> None:
        if child.spec.restart == "temporary" or self.spec.strategy == "simple_one_for_one":
            if child in self._children:
                self._children.remove(child)
        elif child.status != FAILED:
            child.status = STOPPED

    async def _stop_all(self) -> None:
        for child in reversed(list(self._children)):
            await self._stop_child(child)

    async def _after(self, delay: float, token: int) -> None:
        """Tell ourselves ``backoff_elapsed(token)`` in ``delay`` seconds, answering meanwhile."""
        self.start_soon(self._elapse, delay, token)

    async def _elapse(self, delay: float, token: int) -> None:
        await trio.sleep(delay)
        await self.ref.backoff_elapsed.tell(token)  # handled in turn, like any message

    def _unpend(self, child: _Child) -> None:
        for token, (group, _reason) in list(self._pending.items()):
            if child in group:
                group.remove(child)
                if not group:
                    del self._pending[token]

    def _find(self, id: str) -> _Child:
        for c in self._children:
            if c.id == id:
                return c
        raise KeyError(f"supervisor {self.label} has no child {id!r}")

    def _find_any(self, id_or_ref: str | ActorRef) -> _Child:
        if isinstance(id_or_ref, ActorRef):
            for c in self._children:
                if c.ref == id_or_ref:
                    return c
            raise KeyError(f"{id_or_ref!r} is not a running child of supervisor {self.label}")
        return self._find(id_or_ref)


def _describe(reason: Any) -> str:
    if isinstance(reason, BaseException):
        return f"crashed with {type(reason).__name__}: {reason}"
    return f"exited ({reason})"
