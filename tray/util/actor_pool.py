"""``ActorPool``: spread work over a fixed set of actors (Ray's ``ray.util.ActorPool``).

Each actor runs one submitted value at a time; values submitted while every actor is
busy wait in the pool (in order) and start as actors come back. Results come back in
submission order (``get_next``/``map``) or as they finish (``get_next_unordered``/
``map_unordered``).

Ray's behaviour is kept, corner cases included, so code written for Ray ports as is:
an actor comes back to the pool once its result has been *taken* (``get_next*``), not
when the task finishes; ``map`` ignores what was submitted before it; a timeout raises
``TimeoutError`` (here :class:`~tray.exceptions.GetTimeoutError`, a subclass) and leaves
the task in the pool unless ``ignore_if_timedout``; an actor whose call died with
:class:`~tray.exceptions.ActorDiedError` is dropped from the pool.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import tray

from .. import ObjectRef
from ..actor import ActorHandle
from ..exceptions import ActorDiedError, GetTimeoutError, RayTaskError

__all__ = ["ActorPool"]

V = TypeVar("V")
# What ``fn(actor, value)`` returns: one ref, or a list of refs (a call with num_returns > 1).
Future = ObjectRef | list
SubmitFn = Callable[[Any, V], Future]

_TIMEOUT_MSG = "Timed out waiting for result"


def _key(future: Future) -> Any:
    """A hashable key for a future: lists (several returns) become tuples, as in Ray."""
    return tuple(future) if isinstance(future, list) else future


def _refs(key: Any) -> list[ObjectRef]:
    return list(key) if isinstance(key, tuple) else [key]


def _check_future(future: Any) -> Future:
    """``fn`` must return what ``tray.wait`` accepts; say so now rather than at get time."""
    if isinstance(future, ObjectRef):
        return future
    if isinstance(future, list) and future and all(isinstance(r, ObjectRef) for r in future):
        return future
    raise TypeError(
        "ActorPool: fn(actor, value) must return an ObjectRef (e.g. `lambda a, v: a.method.remote(v)`)"
        f" or a non-empty list of them, got {type(future).__name__}: {future!r}"
    )


class ActorPool:
    """A fixed set of actors to run values on, one value per actor at a time.

    ``fn(actor, value)`` starts the work and returns its ObjectRef, e.g.::

        pool = ActorPool([Doubler.remote(), Doubler.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3]))  # [2, 4, 6]

    The pool is meant for one thread (the driver's, usually), as Ray's is.
    """

    def __init__(self, actors: Iterable[ActorHandle]) -> None:
        self._idle_actors: list[ActorHandle] = list(actors)
        # in-flight work, in submission order: key -> (index, actor)
        self._future_to_actor: dict[Any, tuple[int, ActorHandle]] = {}
        # index -> the future as fn returned it (a list stays a list, for tray.get)
        self._index_to_future: dict[int, Future] = {}
        self._next_task_index = 0
        self._next_return_index = 0
        self._pending_submits: deque[tuple[SubmitFn, Any]] = deque()

    # ------------------------------------------------------------------ maps

    def map(self, fn: SubmitFn, values: Iterable[V]) -> Iterator[Any]:
        """Run ``fn(actor, v)`` for each value; an iterator of the results, in order.

        Everything is submitted now; iterating collects the results (and re-raises a
        task's error at its place in the order). Results still pending from earlier
        submissions are ignored, as in Ray.
        """
        self._ignore_previous()
        for v in values:
            self.submit(fn, v)

        def results() -> Iterator[Any]:
            while self.has_next():
                yield self.get_next()

        return results()

    def map_unordered(self, fn: SubmitFn, values: Iterable[V]) -> Iterator[Any]:
        """Like :meth:`map`, but yields each result as soon as it is ready."""
        self._ignore_previous()
        for v in values:
            self.submit(fn, v)

        def results() -> Iterator[Any]:
            while self.has_next():
                yield self.get_next_unordered()

        return results()

    def _ignore_previous(self) -> None:
        """Forget earlier submissions, so a new map returns only its own results.

        Ray drains them with ``get_next(timeout=0, ignore_if_timedout=True)``: in-flight
        work is dropped (its actor goes back to the pool and runs the next call after
        it), and queued work is started and dropped in turn. The same happens here,
        minus Ray's failure modes (a failed earlier task, or get_next after
        get_next_unordered, made Ray's map raise).
        """
        while self._future_to_actor:
            key, (_i, actor) = next(iter(self._future_to_actor.items()))
            self._forget(key)
            self._return_actor(actor)
        self._next_return_index = self._next_task_index

    # ---------------------------------------------------------------- submit

    def submit(self, fn: SubmitFn, value: V) -> None:
        """Run ``fn(actor, value)`` on an idle actor, or queue it until one is free.

        Get its result with :meth:`get_next` or :meth:`get_next_unordered`.
        """
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        try:
            future = _check_future(fn(actor, value))
        except BaseException:
            self._idle_actors.append(actor)  # nothing was started on it
            raise
        index = self._next_task_index
        self._future_to_actor[_key(future)] = (index, actor)
        self._index_to_future[index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Whether a submitted value's result has not been returned yet."""
        return bool(self._future_to_actor)

    def has_free(self) -> bool:
        """Whether an actor is idle and nothing waits for one (a submit would start now)."""
        return bool(self._idle_actors) and not self._pending_submits

    # ------------------------------------------------------------ get_next*

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The result of the oldest submission not yet returned (in submission order).

        Raises ``StopIteration`` when nothing is pending, ``TimeoutError``
        (:class:`~tray.exceptions.GetTimeoutError`) if ``timeout`` seconds pass first,
        and the task's own error if it failed. On timeout the task stays next in line,
        unless ``ignore_if_timedout``: then it is dropped and its actor reused.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        index = min(self._index_to_future)
        future = self._index_to_future[index]
        if timeout is not None:
            refs = _refs(_key(future))
            _ready, not_ready = tray.wait(refs, num_returns=len(refs), timeout=timeout)
            if not_ready:
                if not ignore_if_timedout:
                    raise GetTimeoutError(_TIMEOUT_MSG)
                actor = self._forget(_key(future))
                self._return_actor(actor)
                raise GetTimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        actor = self._forget(_key(future))
        return self._get_result(future, actor)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The result of any submission that is ready (the oldest ready one first).

        Same errors as :meth:`get_next`; with ``ignore_if_timedout`` a timeout drops
        the oldest pending submission. After this, use only ``get_next_unordered``
        (Ray forbids ``get_next`` then).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        key = self._first_ready(timeout)
        if key is None:
            if not ignore_if_timedout:
                raise GetTimeoutError(_TIMEOUT_MSG)
            key = next(iter(self._future_to_actor))
            future = self._index_to_future[self._future_to_actor[key][0]]
            self._return_actor(self._forget(key))
            raise GetTimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        future = self._index_to_future[self._future_to_actor[key][0]]
        actor = self._forget(key)
        return self._get_result(future, actor)

    def _first_ready(self, timeout: float | None) -> Any:
        """The key of the oldest in-flight submission whose refs are all ready, or None on timeout."""
        keys = list(self._future_to_actor)
        if all(isinstance(k, ObjectRef) for k in keys):  # the usual case: one wait does it
            ready, _ = tray.wait(keys, num_returns=1, timeout=timeout)
            return ready[0] if ready else None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            flat = [r for k in keys for r in _refs(k)]
            ready, not_ready = tray.wait(flat, num_returns=len(flat), timeout=0)
            done = set(ready)
            for k in keys:
                if all(r in done for r in _refs(k)):
                    return k
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            tray.wait(not_ready, num_returns=1, timeout=left)

    def _forget(self, key: Any) -> ActorHandle:
        """Take a submission out of the books; returns the actor that ran it."""
        index, actor = self._future_to_actor.pop(key)
        del self._index_to_future[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        return actor

    def _get_result(self, future: Future, actor: ActorHandle) -> Any:
        alive = True
        try:
            return tray.get(future)
        except ActorDiedError as exc:
            # a dead actor would fail every value given to it; but an ActorDiedError the
            # method itself raised (from another actor) arrives as a RayTaskError
            alive = isinstance(exc, RayTaskError)
            raise
        finally:
            self._return_actor(actor, alive)

    def _return_actor(self, actor: ActorHandle, alive: bool = True) -> None:
        if alive:
            self._idle_actors.append(actor)
        if self._pending_submits and self._idle_actors:
            self.submit(*self._pending_submits.popleft())

    # ----------------------------------------------------------- membership

    def push(self, actor: ActorHandle) -> None:
        """Add ``actor`` to the pool (it takes queued work at once, if any)."""
        busy = [a for _i, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)

    def pop_idle(self) -> ActorHandle | None:
        """Take an idle actor out of the pool; None if none is free (see :meth:`has_free`)."""
        if self.has_free():
            return self._idle_actors.pop()
        return None
