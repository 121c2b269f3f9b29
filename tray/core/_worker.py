"""A worker process: runs tasks and hosts an actor for a node.

    python -m tray.core._worker NODE_ADDRESS WORKER_ID
    python -m tray.core._worker --zygote      (a node's zygote, which forks its default workers: ._forkserver)

The runtime's trio thread talks to the node; the main thread runs user code, so a
long task never stalls heartbeats, and ``tray.cancel`` can interrupt it with
KeyboardInterrupt. The process title says what it runs (``tray::IDLE``,
``tray::square``, ``tray::Counter``). It exits when its node goes away: stdin is a
pipe from the node, and its end means the node is gone.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import faulthandler
import functools
import gc
import inspect
import io
import itertools
import os
import pickle
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

import trio
from outcome import Error, Value, capture

from .. import _config
from ..actors import Actor, ActorRef
from ..actors._crossing import wake, wake_asyncio
from ..exceptions import ActorDiedError, MailboxFull, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError
from . import _context, _process, _tasklog
from ._generators import STREAMING
from ._lanes import FAR, NOTHING, LaneServer, read_message, send_message, take_message
from ._objects import ObjectRef, describe, loads
from ._timeline import Recorder

if TYPE_CHECKING:
    import asyncio

    from ..store import Blob

try:
    from setproctitle import setproctitle
except ImportError:  # pragma: no cover - a dependency; titles are cosmetic
    def setproctitle(title: str) -> None:
        pass


class MainThread:
    """A queue of work for the main thread, and the way results get back to the loop.

    Once a caller opens a lane to this (sync) actor, the main thread waits in ``poll`` on
    its lanes and on a pipe that ``post`` writes to while it sleeps: it reads lane calls
    itself (:mod:`._lanes`), and the queue as before.
    """

    def __init__(self) -> None:
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.current: str | None = None  # the task id running now, for cancel
        self._poll: Any = None  # select.poll, once there is a lane
        self._wake_r = self._wake_w = -1
        self._lanes: dict[int, tuple[socket.socket, Callable[[socket.socket, Any], None]]] = {}  # by fd
        self._asleep = False  # in poll: post must wake it

    def run_forever(self) -> None:
        while True:
            try:
                item = self.work.get() if self._poll is None else self._next_polled()
            except KeyboardInterrupt:  # a cancel that arrived after its task ended
                continue
            if item is None:
                return
            fn, args, done = item
            try:
                result = capture(fn, *args)
            except KeyboardInterrupt as exc:  # an interrupt that landed between items
                result = Error(exc)
            done(result)

    def _next_polled(self) -> Any:
        """The next queued item, serving lane calls until there is one."""
        work = self.work
        while True:
            if not work.empty():  # (only this thread takes from it)
                return work.get_nowait()
            self._asleep = True
            try:
                events = [] if not work.empty() else self._poll.poll()
            finally:
                self._asleep = False
            for fd, _ in events:
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(fd, 4096)
                else:
                    self._serve(fd)

    def _serve(self, fd: int) -> None:
        sock, serve = self._lanes[fd]
        try:
            message = read_message(sock, bytearray())
        except (OSError, EOFError, pickle.UnpicklingError):  # the caller went (or cut a call short)
            self._poll.unregister(fd)
            del self._lanes[fd]
            sock.close()
            return
        serve(sock, message)

    def add_lane(self, sock: socket.socket, serve: Callable[[socket.socket, Any], None]) -> None:
        """Loop: a caller's lane, to be read by the main thread from its next wait on."""
        self.post(self._take_lane, (sock, serve), _ignore)

    def _take_lane(self, sock: socket.socket, serve: Callable[[socket.socket, Any], None]) -> None:
        import select

        if self._poll is None:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._poll = select.poll()
            self._poll.register(self._wake_r, select.POLLIN)
        self._lanes[sock.fileno()] = (sock, serve)
        self._poll.register(sock.fileno(), select.POLLIN)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the main thread and wait for its outcome."""
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()
        self.post(fn, args, lambda result: wake(token, trio.lowlevel.reschedule, task, result))
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def post(self, fn: Callable[..., Any], args: tuple, done: Callable[[Any], object]) -> None:
        self.work.put((fn, args, done))
        if self._asleep:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")

    def stop(self) -> None:
        self.work.put(None)
        if self._asleep:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")


def _ignore(result: Any) -> None:
    pass


async def _nothing() -> None:
    """Awaited from another thread: the loop has run what that thread handed it before."""


def _resolve_args(blob: Blob, inline: dict[str, Blob]) -> tuple[tuple, dict]:
    """Unpickle arguments; top-level ObjectRefs become their values (inline ones first)."""
    rt = _process.current()
    args, kwargs = rt.table.decode(blob)  # type: ignore[union-attr]
    if ObjectRef not in map(type, args) and ObjectRef not in map(type, kwargs.values()):
        return args, kwargs
    from ._values import decode, get

    def value(a: Any) -> Any:
        if type(a) is ObjectRef:
            held = inline.get(a._id)
            return decode(rt, a._id, a._owner, held) if held is not None else get(a)  # type: ignore[arg-type]  # a worker's runtime is set
        return a

    return tuple(value(a) for a in args), {k: value(v) for k, v in kwargs.items()}


def _results(result: Any, num_returns: int, what: str, keys: list[str], owner: str) -> list[Blob]:
    """The return values, encoded: large ones are stored under their object ids, for ``owner``."""
    if num_returns == 0:
        return []
    if num_returns == 1:
        values = [result]
    else:
        try:
            values = list(result)
        except TypeError:
            raise TypeError(f"{what} has num_returns={num_returns} but returned a non-iterable "
                            f"{type(result).__name__}") from None
        if len(values) != num_returns:
            raise ValueError(f"{what} has num_returns={num_returns} but returned {len(values)} values")
    rt = _process.current()
    table = rt.table  # type: ignore[union-attr]
    blobs = []
    try:
        for v, key in zip(values, keys):  # noqa: B905 - hot path: one key per value by construction
            blob, refs = table.encode_collecting(v, key, owner)
            if refs:
                _lend(rt, refs, owner, key)
            blobs.append(blob)
    except TypeError as exc:
        raise TypeError(f"{what}: its return value {exc}") from None
    return blobs


def _lend(rt: Any, refs: list[ObjectRef], caller: str, key: str) -> None:
    """Refs in a return value outlive the task (Ray's borrowing): their owners count the
    caller as a borrower now, before our own refs go, until the caller says it let go
    (the caller's ``unborrow``, as for any ref it holds). The caller's own refs (and actor
    handles) come home inside the value ``key``: it holds them while it holds that value."""
    home: list[str] = []
    for ref in refs:
        owner = ref._owner
        if owner is None:  # ours
            rt.table.add_borrower(ref._id, caller)
        elif owner.actor_id.partition(":")[0] != caller:  # a third process's: told before our unborrow
            rt.soon(owner.borrow.try_tell, [ref._id], caller)
        else:
            home.append(ref._id)
            back = owner
    if home:
        if rt.in_loop():  # cannot wait here: the note goes ahead of the reply, on the same connection
            rt.soon(back.hold_inside.try_tell, key, home)
        else:  # wait for the caller to hold them before we reply (only values that carry its refs pay this)
            rt.call(_hold_home, back, key, home)


async def _hold_home(caller: ActorRef, key: str, oids: list[str]) -> None:
    with trio.move_on_after(HOLD_HOME_S):
        try:
            await caller.hold_inside.ask(key, oids)
        except RayError:  # the caller is gone: nobody needs them held
            pass


def _stream(gen: Any, owner: ActorRef, uid: str, task_id: str, rt: Any, what: str) -> tuple[int, BaseException | None]:
    """Send each item of a streaming task to its owner as it is yielded.

    Returns how many were sent, and what the generator raised after them (the owner
    waits for the items, which travel apart from this reply, before it ends the stream).
    Large items are stored for ``uid``, the owner's process.
    """
    if not hasattr(gen, "__next__"):
        raise TypeError(f"{what} has num_returns='streaming' but returned a {type(gen).__name__}, not a generator")
    count = 0
    try:
        for index, item in enumerate(gen):
            blob = rt.table.encode(item, f"{task_id}~{index}", uid)
            rt.soon(owner.stream_item.try_tell, task_id, index, blob)
            count = index + 1
    except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
        return count, RayTaskError.from_exception(exc, what)
    return count, None


async def _stream_async(agen: Any, owner: ActorRef, uid: str, task_id: str, rt: Any,
                        what: str) -> tuple[int, BaseException | None]:
    """:func:`_stream` for an async actor's async generator method, on its asyncio loop."""
    count = 0
    try:
        async for item in agen:
            blob = rt.table.encode(item, f"{task_id}~{count}", uid)
            rt.soon(owner.stream_item.try_tell, task_id, count, blob)
            count += 1
    except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
        return count, RayTaskError.from_exception(exc, what)
    return count, None


HOLD_HOME_S = 30.0  # how long a worker waits for its caller to hold refs that came home in a result

_WHERE = f", ip={_config.get('node_ip')}" if _config.get("node_ip") else ""  # a cluster node's worker


class _Prefixed(io.TextIOBase):
    """The worker's stdout/stderr: each line starts with where it came from, ``(name pid=N)``,
    as Ray's do; the node copies these lines to the driver's terminal."""

    def __init__(self, raw: Any, label: Callable[[], str]) -> None:
        self._raw = raw
        self._label = label
        self._at_line_start = True

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not text:
            return 0
        prefix = f"({self._label()} pid={os.getpid()}{_WHERE}) "
        lines = text.splitlines(keepends=True)
        out = []
        for line in lines:
            if self._at_line_start:
                out.append(prefix)
            out.append(line)
            self._at_line_start = line.endswith("\n")
        self._raw.write("".join(out))
        self._raw.flush()
        return len(text)

    def flush(self) -> None:
        self._raw.flush()

    def fileno(self) -> int:
        return self._raw.fileno()


_MAIN = 0  # the key of the main thread's open span


class Worker:
    """What this process runs: tasks one at a time, or one actor."""

    def __init__(self, main: MainThread, worker_id: str) -> None:
        self.main = main
        self.worker_id = worker_id
        self.at = f"pid={os.getpid()}{_WHERE}"  # where this is, in error messages; the node id joins on start
        self.recorder = Recorder()
        self.running: dict[int, tuple[str, str, str, int]] = {}  # open spans: (category, name, id, start_ns)
        self._span_keys = itertools.count(1)
        self.functions: dict[str, Callable[..., Any]] = {}
        self.owners: dict[str, ActorRef] = {}  # callers' OwnerActors, by system uid (see Executor.hello)
        self.actor: Any = None
        self.actor_name = ""
        self.actor_module = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.async_slots: asyncio.Semaphore | None = None
        self.calls_running: dict[asyncio.Task, str] = {}  # an async actor's running calls: their task ids
        self.async_calls: dict[str, asyncio.Task] = {}  # ... by task id (those that have one), for cancel
        self.pending_calls: set[str] = set()  # this actor's calls received and not done, by task id
        self._async_names: dict[str, tuple[str, str, str]] = {}  # an async actor's, by method (_names_of)
        self.label = "IDLE"  # what runs now: the task's name or the actor's class
        self.trio_guest: _TrioGuest | None = None
        # a threaded actor (Ray's sync actor with max_concurrency > 1, or concurrency groups):
        # each group's calls run in a pool of its own size; "" is the default group (None: the main thread)
        self.pools: dict[str, ThreadPoolExecutor | None] = {}
        self.group_slots: dict[str, asyncio.Semaphore] = {}  # an async actor's groups
        self.lanes: LaneServer | None = None  # callers' lanes to this actor (._lanes), once asked
        self.task_lanes: LaneServer | None = None  # owners' lanes to this task worker, once asked

    def redirect_output(self) -> None:
        sys.stdout = _Prefixed(sys.stdout, lambda: self.label)
        sys.stderr = _Prefixed(sys.stderr, lambda: self.label)

    # ------------------------------------------------------------------ tasks

    def span(self, key: int, category: str, name: str, span_id: str) -> _Span:
        """``with worker.span(...) as s:`` marks a task or call as running (``current_work``)
        and records its span when it ends, with ``s.status`` ("error" unless set)."""
        return _Span(self, key, (category, name, span_id, perf_counter_ns()))

    def run_task(self, wire: tuple) -> tuple[str, Any]:
        """Main thread: run one task; ("ok", [blob...]) or ("error", exc) or ("cancelled", None)."""
        with self.span(_MAIN, "task", wire[1], wire[0]) as span:
            result = self._run_task(wire)
            span.status = result[0]
        return result

    def _run_task(self, wire: tuple) -> tuple[str, Any]:
        task_id, name, fn_id, fn_blob, args_blob, inline, num_returns, stream_to, keys, owner = wire[:10]
        fn = self.functions.get(fn_id)
        if fn is None:
            fn = self.functions[fn_id] = loads(fn_blob)
        running = _context.current.set(_context.Running(task_id, name, _function_name(fn)))
        setproctitle(f"tray::{name}")
        self.label = name
        self.main.current = task_id
        rt = _process.current()
        if rt is not None:
            rt.current_task_id = task_id
            _assign(rt, wire[10] if len(wire) > 10 else None, wire[11] if len(wire) > 11 else ())
        where = f"task {name} ({self.at})"
        try:
            args, kwargs = _resolve_args(args_blob, inline)
            result = fn(*args, **kwargs)
            if stream_to is not None:
                return "streamed", _stream(result, stream_to, owner, task_id, rt, where)
            return "ok", _results(result, num_returns, where, keys, owner)
        except KeyboardInterrupt:
            return "cancelled", None
        except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
            _post_mortem(exc)
            return "error", RayTaskError.from_exception(exc, where)
        except BaseException as exc:  # noqa: BLE001 - SystemExit (sys.exit()) and the like: Ray's worker crash, not retried
            return "error", WorkerCrashedError(f"{where} ended its worker: {_exit_words(exc)}")
        finally:
            _context.current.reset(running)
            self.main.current = None
            if rt is not None:
                rt.current_task_id = None  # (its children are forgotten in the loop: Executor.run)
            self.label = "IDLE"
            setproctitle("tray::IDLE")

    # ----------------------------------------------------------------- actors

    def create_actor(self, actor_id: str, cls_blob: bytes, args_blob: bytes, inline: dict,
                     max_concurrency: int | None, groups: dict[str, int] | None = None,
                     shape: dict[str, int] | None = None, gpus: tuple[int, ...] = ()) -> None:
        rt = _process.current()
        if rt is not None:
            rt.current_actor_id = actor_id
            _assign(rt, shape, gpus)
        cls = loads(cls_blob)
        self.actor_name = self.label = cls.__name__
        self.actor_module = getattr(cls, "__module__", "")
        if rt is not None:
            from ._remote import _method_table

            rt.current_actor_class = (cls.__name__, _method_table(cls))  # for current_actor
        setproctitle(f"tray::{cls.__name__}")
        name = f"{cls.__name__}.__init__"
        with self.span(_MAIN, "actor_creation", name, actor_id) as span:
            args, kwargs = _resolve_args(args_blob, inline)
            if any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
                   for _, m in inspect.getmembers(cls)):
                self._start_asyncio(max_concurrency or 1000, groups or {})
            else:
                self._start_pools(max_concurrency or 1, groups or {})
            try:
                if self.loop is not None:
                    import asyncio

                    self.actor = asyncio.run_coroutine_threadsafe(_construct(cls, args, kwargs), self.loop).result()
                else:
                    self.actor = cls(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
                raise RayTaskError.from_exception(exc, f"{name} ({self.at})") from None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - exit_actor() or sys.exit() in __init__: the actor never runs
                raise ActorDiedError(f"{name} ({self.at}) exited: {_exit_words(exc)}") from None
            span.status = "ok"
        _trim_heap()  # the actor waits for its first call

    def _start_pools(self, max_concurrency: int, groups: dict[str, int]) -> None:
        """A sync actor's calls run one at a time on the main thread (cancellable there), unless
        it is threaded: then each group's in a thread pool of the group's size (Ray's)."""
        self.pools[""] = None if max_concurrency == 1 else ThreadPoolExecutor(max_concurrency, "tray-actor")
        for group, size in groups.items():
            self.pools[group] = ThreadPoolExecutor(size, f"tray-{group}")

    def _start_asyncio(self, slots: int, groups: dict[str, int]) -> None:
        """Async actors (Ray's) run their methods on an asyncio loop, in a thread of its own."""
        import asyncio  # only async actors pay for importing it

        self.loop = loop = _new_event_loop()  # (here: if it cannot be made, the actor's creation fails)
        self.async_slots = asyncio.Semaphore(slots)
        self.group_slots = {group: asyncio.Semaphore(size) for group, size in groups.items()}

        def run() -> None:
            asyncio.set_event_loop(loop)
            why = "it returned"
            try:
                loop.run_forever()
            except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt or SystemExit a callback let out
                why = f"{type(exc).__name__} {exc}".strip()
            # it never stops on purpose: without it the actor's calls would wait for ever, so
            # the process ends, and its callers hear the actor died (or it restarts)
            print(f"tray: actor {self.actor_name}: its asyncio loop stopped ({why}); the actor exits",
                  file=sys.__stderr__, flush=True)
            os._exit(1)

        threading.Thread(target=run, name="tray-asyncio", daemon=True).start()

    def call_sync(self, wire: tuple, owner: str, span_key: int = _MAIN) -> tuple[str, Any]:
        """Main thread: one call of a sync actor, in order (or a pool's thread: a threaded actor's)."""
        method, args_blob, inline, num_returns, keys = wire[:5]
        name = f"{self.actor_name}.{method}"
        if keys and keys[0] in _context.cancelled:  # cancelled while it waited: never runs (Ray's)
            return "error", TaskCancelledError(f"actor call {name} ({keys[0]}) was cancelled before it ran")
        _context.current.set(_context.Running(keys[0] if keys else "", name, f"{self.actor_module}.{name}"))
        result: tuple[str, Any]
        with self.span(span_key, "actor_call", name, keys[0] if keys else "") as span:
            try:
                args, kwargs = _resolve_args(args_blob, inline)
                value = getattr(self.actor, method)(*args, **kwargs)
                if num_returns == STREAMING:
                    result = "streamed", _stream(value, self.owners[owner], owner, keys[0], _process.current(),
                                                 f"{name} ({self.at})")
                else:
                    result = "ok", _results(value, num_returns, f"{name} ({self.at})", keys, owner)
            except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
                _post_mortem(exc)
                result = "error", RayTaskError.from_exception(exc, f"{name} ({self.at})")
            span.status = result[0]
        return result

    def start_call(self, wire: tuple, owner: str, done: Callable[[Any], None]) -> None:
        """asyncio loop: start one call of an async actor; ``done`` gets its outcome there."""
        task = self.loop.create_task(self._call_then(wire, owner, done))  # type: ignore[union-attr]
        key = self.calls_running[task] = wire[4][0] if wire[4] else ""  # (asyncio holds tasks weakly)
        if key:
            self.async_calls[key] = task
        task.add_done_callback(self._call_ended)

    def _call_ended(self, task: asyncio.Task) -> None:
        key = self.calls_running.pop(task)
        if key:
            self.async_calls.pop(key, None)

    async def _call_then(self, wire: tuple, owner: str, done: Callable[[Any], None]) -> None:
        try:
            result = await self.call_async(wire, owner)
        except Exception as exc:  # noqa: BLE001 - any failure is handed to done, which reports it
            done(Error(exc))
        except BaseException as exc:  # cancelled with its loop: the owner hears why
            done(Error(exc))
            raise
        else:
            done(Value(result))

    def _names_of(self, method: str) -> tuple[str, str, str]:
        """An async method's name, where it runs (for errors), and Ray's function name for it
        (from the method's qualified name); worked out once per method."""
        name = f"{self.actor_name}.{method}"
        qualname = getattr(getattr(type(self.actor), method, None), "__qualname__", name)
        return name, f"{name} ({self.at})", f"{self.actor_module}.{qualname}"

    async def call_async(self, wire: tuple, owner: str) -> tuple[str, Any]:
        """asyncio loop: one call of an async actor (up to max_concurrency at once)."""
        method, args_blob, inline, num_returns, keys = wire[:5]
        names = self._async_names.get(method)
        if names is None:
            names = self._async_names[method] = self._names_of(method)
        name, where, function_name = names
        slots = self.group_slots[wire[5]] if len(wire) > 5 else self.async_slots
        if keys and keys[0] in _context.cancelled:  # cancelled while it waited: never runs (Ray's)
            return "error", TaskCancelledError(f"actor call {name} ({keys[0]}) was cancelled before it ran")
        _context.current.set(_context.Running(keys[0] if keys else "", name, function_name))
        async with slots:  # type: ignore[union-attr]
            with self.span(next(self._span_keys), "actor_call", name, keys[0] if keys else "") as span:
                try:
                    args, kwargs = _resolve_args(args_blob, inline)  # dependencies are ready: no long wait
                    fn = getattr(self.actor, method)
                    if _speaks_trio(fn):
                        if self.trio_guest is None:
                            self.trio_guest = _TrioGuest()
                        result = await self.trio_guest.run(fn, args, kwargs)
                    else:
                        result = fn(*args, **kwargs)
                        if inspect.isawaitable(result):
                            result = await result
                    out: tuple[str, Any]
                    if num_returns == STREAMING:
                        rt = _process.current()
                        if hasattr(result, "__anext__"):
                            out = "streamed", await _stream_async(result, self.owners[owner], owner, keys[0], rt,
                                                                  where)
                        else:
                            out = "streamed", _stream(result, self.owners[owner], owner, keys[0], rt, where)
                    else:
                        out = "ok", _results(result, num_returns, where, keys, owner)
                except Exception as exc:  # noqa: BLE001 - user code may raise anything: it becomes the caller's error
                    return "error", RayTaskError.from_exception(exc, where)
                except BaseException as exc:
                    if _ends_actor(exc):  # as an Exception: a SystemExit would stop the asyncio loop
                        raise _ActorEnds(exc) from None
                    raise
                span.status = "ok"
                return out


class _Span:
    """One task or call running in a worker (see ``Worker.span``)."""

    __slots__ = ("worker", "key", "entry", "status")

    def __init__(self, worker: Worker, key: int, entry: tuple[str, str, str, int]) -> None:
        self.worker, self.key, self.entry, self.status = worker, key, entry, "error"

    def __enter__(self) -> _Span:
        self.worker.running[self.key] = self.entry
        return self

    def __exit__(self, *exc_info: Any) -> None:
        del self.worker.running[self.key]
        self.worker.recorder.spans.append((*self.entry, perf_counter_ns(), self.status))


def _speaks_trio(fn: Any) -> bool:
    """Whether an async method was written for trio (it names trio, not asyncio)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and _trio_code(code)


@functools.cache
def _trio_code(code: Any) -> bool:
    names = code.co_names
    return bool(code.co_flags & inspect.CO_COROUTINE) and "trio" in names and "asyncio" not in names


class _TrioGuest:
    """trio in guest mode on the actor's asyncio loop, started on first use: an async actor's
    trio-native methods run there, asyncio ones on asyncio itself, side by side."""

    def __init__(self) -> None:
        self.token: trio.lowlevel.TrioToken | None = None
        self.nursery: trio.Nursery | None = None
        self.starting: Any = None

    async def _start(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        started = loop.create_future()

        async def guest_main() -> None:
            async with trio.open_nursery() as nursery:
                self.nursery, self.token = nursery, trio.lowlevel.current_trio_token()
                started.set_result(None)
                await trio.sleep_forever()

        trio.lowlevel.start_guest_run(
            guest_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=lambda _outcome: None,
        )
        await started

    async def run(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        import asyncio

        if self.starting is None:
            self.starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self.starting)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def runner() -> None:
            try:
                value = await fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed back to the asyncio side, re-raised there
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(value)

        assert self.token is not None and self.nursery is not None
        wake(self.token, self.nursery.start_soon, runner)
        return await fut


async def _construct(cls: type, args: tuple, kwargs: dict) -> Any:
    return cls(*args, **kwargs)


class Executor(Actor):
    """The worker's face to the node and to owners: run tasks, host an actor, call it."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.owners = worker.owners  # callers' OwnerActors, by system uid
        self.assigned = trio.Event()  # set once this worker knows which job's code it runs

    def hello(self, owner: ActorRef) -> None:
        """An owner introduces itself once, so its calls carry a short key, not a pickled ref."""
        self.owners[owner.actor_id.partition(":")[0]] = owner

    def assign_job(self, job_id: str, config: dict[str, Any]) -> None:
        """The node gives this (fresh) worker to a job: its namespace, and the driver's import
        path and working directory, so the job's modules import here as they do there."""
        rt = _process.current()
        assert rt is not None
        rt.job_id = job_id
        rt.namespace = config.get("namespace", rt.namespace)
        missing = [p for p in config.get("sys_path", ()) if p not in sys.path]
        sys.path[:0] = missing
        cwd = config.get("cwd")
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        self.assigned.set()

    async def run(self, wire: tuple) -> tuple[str, Any]:
        if not self.assigned.is_set():  # the assignment travels from the node, the task from its owner
            await self.assigned.wait()
        owner = _process.current().owner  # type: ignore[union-attr]
        try:
            result = await self.w.main.call(self.w.run_task, wire)
        finally:
            # here, not from the main thread: one wake of the loop per task, not two (what the
            # task handed the loop before it ended has run: the result's wake came after it)
            owner.forget_children(wire[0])
        if result[0] == "error":
            _exit_if_orphaned()
        owner.leases.release_idle()  # the task's children are done: so are their workers
        return result

    async def create_actor(self, actor_id: str, cls_blob: bytes, args_blob: bytes, inline: dict,
                           max_concurrency: int | None, groups: dict[str, int] | None = None,
                           shape: dict[str, int] | None = None, gpus: tuple[int, ...] = ()) -> None:
        if not self.assigned.is_set():
            await self.assigned.wait()
        await self.w.main.call(self.w.create_actor, actor_id, cls_blob, args_blob, inline, max_concurrency, groups,
                               shape, gpus)

    def call(self, call_id: int, wire: tuple, owner_key: str) -> None:
        """An actor call; the result goes back to its owner as ``call_done`` (calls pipeline)."""
        done = self._reply(call_id, wire, owner_key, None)
        w = self.w
        group = wire[5] if len(wire) > 5 else ""
        if group and group not in (w.group_slots if w.loop is not None else w.pools):
            err = ValueError(f"{w.actor_name}.{wire[0]}: no concurrency group {group!r} (the actor's groups: "
                             f"{sorted(w.group_slots if w.loop is not None else w.pools)})")
            done(Value(("error", RayTaskError.from_exception(err, f"{w.actor_name}.{wire[0]} ({w.at})"))))
        elif w.loop is not None:
            wake_asyncio(w.loop, w.start_call, wire, owner_key, done)
        elif (pool := w.pools.get(group)) is not None:
            pool.submit(_call_in_pool, w, wire, owner_key, done)
        else:
            w.main.post(w.call_sync, (wire, owner_key), done)

    def _reply(self, call_id: int, wire: tuple, owner_key: str, lane: socket.socket | None) -> Callable[[Any], None]:
        """How the call's outcome goes back, from the thread that ran it: down the caller's
        ``lane`` if it came that way and needs nothing else (else ``FAR`` there), then (or
        else) as ``call_done``, sent from that thread itself if it can."""
        owner = self.owners[owner_key]
        me = self.ref.actor_id
        rt = _process.current()
        assert rt is not None
        key = wire[4][0] if wire[4] else None
        if key is not None:
            self.w.pending_calls.add(key)

        def done(result: Any) -> None:
            if key is not None:
                self.w.pending_calls.discard(key)
                if key in _context.cancelled:  # whatever it did then, its caller gets Ray's cancellation
                    _context.cancelled.discard(key)
                    result = Value(("error", TaskCancelledError(f"actor call {self.w.actor_name}.{wire[0]} "
                                                                f"({key}) was cancelled")))
            ends = isinstance(result, Error) and _ends_actor(result.error)
            kind, payload = ("error", None) if ends else \
                result.value if isinstance(result, Value) else ("error", _error(result))
            if lane is not None:
                with contextlib.suppress(OSError):
                    if kind == "ok" and rt.quiet():
                        send_message(lane, payload)
                        return
                    send_message(lane, FAR)
            if ends:
                _end_actor(rt, self.w, owner, me, call_id, wire[0], result.error)  # never returns
            if kind == "ok" and rt.quiet() and owner.call_done.tell_from_thread(me, call_id, kind, payload):
                return
            rt.soon_unless_closed(_send_done, owner, me, call_id, kind, payload)

        return done

    async def open_lane(self, tasks: bool = False) -> tuple[str, bytes] | None:
        """A caller asks for a lane (:mod:`._lanes`): the address and token to connect with;
        None unless this is an actor that reads calls from one (a sync actor whose calls run
        on the main thread, or an async actor without concurrency groups), or (``tasks``) a
        worker that runs tasks."""
        w = self.w
        if tasks:
            if w.actor is not None:
                return None
            if w.task_lanes is None:
                w.task_lanes = LaneServer(self._serve_task_lane, w.main.add_lane)
                await w.task_lanes.start()
            return w.task_lanes.address, w.task_lanes.token
        if w.actor is None:
            return None
        if w.lanes is None:
            if w.loop is not None and not w.group_slots:
                w.lanes = LaneServer(self._serve_lane_async, self._add_lane_async)
            elif w.loop is None and list(w.pools.items()) == [("", None)]:
                w.lanes = LaneServer(self._serve_lane, w.main.add_lane)
            else:
                return None
            await w.lanes.start()
        return w.lanes.address, w.lanes.token

    def _serve_lane(self, lane: socket.socket, message: Any) -> None:
        """Main thread: one call read from a caller's lane, run here and now."""
        call_id, wire, owner_key = message
        self._reply(call_id, wire, owner_key, lane)(capture(self.w.call_sync, wire, owner_key))

    def _serve_task_lane(self, lane: socket.socket, wire: tuple) -> None:
        """Main thread: a task read from the lane of an owner that holds a lease on this
        worker, run here and now; its outcome goes back down the lane, once what the task
        handed the loop has run (as :meth:`run`'s reply would follow it)."""
        w = self.w
        result = capture(w.run_task, wire)
        reply = result.unwrap() if isinstance(result, Value) else ("error", _error(result))
        rt = _process.current()
        assert rt is not None and rt.owner is not None
        rt.owner.forget_children(wire[0])
        if reply[0] == "error":
            _exit_if_orphaned()
        if not rt.quiet():
            rt.call(_nothing)
        with contextlib.suppress(OSError):
            send_message(lane, reply)
        if any(pool.idle for pool in list(rt.owner.leases.pools.values())):
            rt.soon_unless_closed(rt.owner.leases.release_idle)  # the task's children are done: so are their workers

    def _add_lane_async(self, lane: socket.socket, serve: Callable[[socket.socket, Any], None]) -> None:
        """Loop: an async actor's lane is read by its asyncio loop."""
        loop = self.w.loop
        assert loop is not None
        lane.setblocking(False)
        got = bytearray()

        def readable() -> None:
            try:
                chunk = lane.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:  # the caller went
                loop.remove_reader(lane)
                lane.close()
                return
            got.extend(chunk)
            while got and (message := take_message(got)) is not NOTHING:
                serve(lane, message)

        wake_asyncio(loop, loop.add_reader, lane, readable)

    def _serve_lane_async(self, lane: socket.socket, message: Any) -> None:
        """asyncio loop: one call read from a caller's lane, started as any other call."""
        call_id, wire, owner_key = message
        self.w.start_call(wire, owner_key, self._reply(call_id, wire, owner_key, lane))

    def describe_objects(self) -> list[dict[str, Any]]:
        """What this worker process holds (``tray memory``)."""
        return describe(_process.current().table, "WORKER")  # type: ignore[union-attr]

    def timeline(self) -> dict[str, Any]:
        """The spans of this worker's recent tasks and calls, and those running now (``tray.timeline``)."""
        return self.w.recorder.dump(list(self.w.running.values()))

    def current_work(self) -> dict[str, Any]:
        """Where this worker is and what runs here now, for how long: ``running`` holds
        ``(category, name, id, seconds)`` each (a hung ``tray.get`` says what it waits on)."""
        now = perf_counter_ns()
        running = [(cat, name, span_id, (now - t0) / 1e9) for cat, name, span_id, t0 in list(self.w.running.values())]
        rt = _process.current()
        return {"pid": os.getpid(), "node_id": rt.node_id if rt is not None else "", "running": running}

    def describe_tasks(self) -> dict[str, Any]:
        """The tasks this worker's code submitted, and the ids of the tasks and calls it runs now
        (their owners only know they were sent here): ``tray list tasks``."""
        rows = _process.current().owner.describe_tasks()  # type: ignore[union-attr]
        return {"tasks": rows, "running": [span[2] for span in list(self.w.running.values())],
                "paused": [s[2] for k, s in list(self.w.running.items())
                           if k == _MAIN and threading.main_thread().ident in _tasklog.paused_threads]}

    def cancel_call(self, task_id: str) -> None:
        """``tray.cancel`` of an actor call sent here (Ray's rules): one still waiting here will
        not run; a running async call's asyncio task is cancelled; a running sync or threaded
        call goes on, and ``get_runtime_context().is_canceled()`` is True in it. Its caller
        gets TaskCancelledError either way."""
        w = self.w
        if task_id not in w.pending_calls:
            return  # done already: its result stands
        _context.cancelled.add(task_id)
        task = w.async_calls.get(task_id)
        if task is not None and w.loop is not None:
            w.loop.call_soon_threadsafe(task.cancel)

    def interrupt(self, task_id: str, recursive: bool) -> None:
        """Cancel (not force): KeyboardInterrupt in the main thread if it runs that task;
        ``recursive``: the tasks it submitted are cancelled too."""
        if self.w.main.current == task_id:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal: it also wakes a sleeping or blocked task
            if recursive:
                _process.current().owner.cancel_children(task_id)  # type: ignore[union-attr]


POST_MORTEM_HOOK = "tray.debug:post_mortem"  # the debugger is a library: found by name, imported when used


def _post_mortem(exc: BaseException) -> None:
    """``post_mortem`` on: the task stops where ``exc`` was raised until ``tray debug`` attaches
    (or a timeout), then fails as it would have; a debugger that breaks never hides the error."""
    if not _config.get("post_mortem"):
        return
    import pkgutil

    try:
        pkgutil.resolve_name(POST_MORTEM_HOOK)(exc)
    except Exception as hook_exc:  # noqa: BLE001 - said on stderr; the task's own error goes on
        print(f"tray: the post-mortem debugger failed: {hook_exc!r}", file=sys.stderr)


def _error(result: Error) -> BaseException:
    exc = result.error
    return exc if isinstance(exc, RayTaskError) else RayTaskError.from_exception(exc, "worker")


def _function_name(fn: Any) -> str:
    """Ray's task function name: ``module.name`` (a nested function's enclosing scopes left out, as Ray does)."""
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__name__', '')}"


_ONE_CPU = {"CPU": 1.0}


def _assign(rt: Any, shape: dict[str, int] | None, gpus: tuple[int, ...] = ()) -> None:
    """What the lease of the task or actor running here holds (``get_assigned_resources``),
    its GPUs (``get_gpu_ids``; ``CUDA_VISIBLE_DEVICES``, as Ray sets it) and its placement
    group (``get_current_placement_group``)."""
    if shape is None and rt.assigned_resources is _ONE_CPU:  # as for the task before: nothing changes
        return
    from ..cluster._placement import captures

    _see_gpus(rt, gpus)

    rt.capture_child_tasks = captures(shape)  # its children go into its group (placement_group_capture_child_tasks)
    if shape is None:
        rt.assigned_resources, rt.current_placement_group_id = _ONE_CPU, None
    else:
        from ..cluster._resources import from_units

        rt.assigned_resources, rt.current_placement_group_id = _context.split_shape(from_units(shape))
    if _USER_OMP is None:  # Ray's: OpenMP's threads follow the CPUs given, unless the user set them
        threads = str(max(1, int(rt.assigned_resources.get("CPU", 1))))
        if os.environ.get("OMP_NUM_THREADS") != threads:
            os.environ["OMP_NUM_THREADS"] = threads


_USER_OMP = os.environ.get("OMP_NUM_THREADS")  # as the worker started: the driver's setting, if any
_NODE_GPUS = os.environ.get("CUDA_VISIBLE_DEVICES")  # as the worker started: the node's GPUs, if it names them


def _see_gpus(rt: Any, gpus: tuple[int, ...]) -> None:
    """The task or actor sees only its lease's GPUs (by their ids among the node's own
    ``CUDA_VISIBLE_DEVICES``, if set); one without GPUs, what the worker started with."""
    if gpus:
        node = _NODE_GPUS.split(",") if _NODE_GPUS else None
        names = [node[i] if node is not None and i < len(node) else str(i) for i in gpus]
        rt.gpu_ids = [int(n) if n.isdigit() else n for n in names]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(names)
    elif rt.gpu_ids:
        rt.gpu_ids = []
        if _NODE_GPUS is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = _NODE_GPUS


def _call_in_pool(w: Worker, wire: tuple, owner_key: str, done: Callable[[Any], None]) -> None:
    """A threaded actor's call, in one of its pool's threads."""
    done(capture(w.call_sync, wire, owner_key, next(w._span_keys)))


def _exit_words(exc: BaseException) -> str:
    """How a BaseException that ends a worker or actor is named in errors."""
    if getattr(exc, "tray_exit_actor", False):
        return "tray.actor.exit_actor() was called"
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r}) was called" if exc.code is not None else "sys.exit() was called"
    return f"it raised {type(exc).__name__}: {exc}"


class _ActorEnds(Exception):
    """An async actor's method ended the actor (``cause``): carried out of asyncio as an Exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause


def _ends_actor(exc: BaseException) -> bool:
    """Whether an actor method's exception ends the actor (Ray: exit_actor(), sys.exit(), any
    BaseException that is not an Exception), rather than failing the one call."""
    if isinstance(exc, _ActorEnds):
        return True
    if isinstance(exc, (Exception, KeyboardInterrupt, trio.Cancelled)):
        return False
    asyncio = sys.modules.get("asyncio")
    return asyncio is None or not isinstance(exc, asyncio.CancelledError)


def _end_actor(rt: Any, w: Worker, owner: ActorRef, me: str, call_id: int, method: str,
               exc: BaseException) -> None:
    """The actor ends on purpose, from the thread that ran the call (no further call runs
    there): the call's caller hears why, the control store marks the actor dead (it is not
    restarted, lookups fail), the reason goes to stderr (the node's death report carries it
    to every caller), and the process exits."""
    if isinstance(exc, _ActorEnds):
        exc = exc.cause
    why = f"actor {w.actor_name} ({rt.current_actor_id}) exited: {_exit_words(exc)}"
    print(f"tray: {why}", file=sys.__stderr__, flush=True)
    if getattr(exc, "tray_exit_actor", False):  # exit_actor(): the actor's atexit handlers run, as in Ray
        atexit.unregister(_process.shutdown)  # (not tray's own: this runtime still reports the exit below)
        atexit._run_exitfuncs()

    async def go() -> None:
        ended = ActorDiedError(f"{why}; call {method} ended it")
        ended.tray_actor_exited = why  # type: ignore[attr-defined]  # the caller ends the actor's other calls too
        _send_done(owner, me, call_id, "error", ended)
        with trio.move_on_after(5):
            try:
                await rt.control.actor_failed.ask(rt.current_actor_id, why)
            except Exception:  # noqa: BLE001 - the head is gone: the process exit says it all
                pass
        os._exit(0)

    try:
        rt.call(go)
    finally:
        os._exit(0)


def _exit_if_orphaned() -> None:
    """If this worker's node is gone, an error may be that loss and nothing of the task's
    own: exit instead of reporting it, so its owner sees a crash and retries elsewhere
    (the node's end closes our stdin too, but that may come second)."""
    rt = _process.current()
    if rt is not None and rt.scheduler is not None and not rt.scheduler.alive:
        os._exit(1)


# Replies waiting for a backed-up connection to their owner, in order (owner -> replies).
_backlogs: dict[ActorRef, collections.deque[tuple]] = {}


def _send_done(owner: ActorRef, me: str, call_id: int, kind: str, payload: Any) -> None:
    """Loop: send an actor call's reply to its owner. A connection backed up beyond its high
    water (many calls ending at once with sizeable results) queues the reply, in order,
    for a task that waits for the connection to drain: a reply is never dropped."""
    if kind == "error":
        _exit_if_orphaned()
    backlog = _backlogs.get(owner)
    if backlog is None:
        try:
            owner.call_done.tell_nowait(me, call_id, kind, payload)
            return
        except MailboxFull:
            backlog = _backlogs[owner] = collections.deque()
            trio.lowlevel.spawn_system_task(_drain_backlog, owner, backlog)
        except Exception:  # noqa: BLE001 - the owner is gone: nobody waits for this result
            return
    backlog.append((me, call_id, kind, payload))


async def _drain_backlog(owner: ActorRef, backlog: collections.deque[tuple]) -> None:
    try:
        while backlog:
            await owner.call_done.tell(*backlog.popleft())  # waits while the connection is backed up
    except Exception:  # noqa: BLE001 - the owner is gone: nobody waits for these results
        backlog.clear()
    finally:
        del _backlogs[owner]


def main(argv: list[str] | None = None) -> None:
    from ._runtime import Runtime

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [ZYGOTE_FLAG]:
        return _zygote()
    node_address, worker_id = argv[0], argv[1]
    setproctitle("tray::IDLE")
    _one_malloc_arena()
    faulthandler.enable()  # a crash in native code leaves its Python stack in the stderr tail the node reports
    main_thread = MainThread()
    worker = Worker(main_thread, worker_id)
    worker.redirect_output()

    async def setup(rt: Runtime) -> None:
        worker.at += f", node={rt.node_id}"
        executor = await rt.system.spawn(Executor, worker, name="tray.executor", max_concurrency=1 << 16)
        await rt.scheduler.register_worker.ask(worker_id, executor, os.getpid())
        rt.system._nursery.start_soon(_watch_parent)  # type: ignore[union-attr]

    # Other processes (owners of leases on us, callers of our actor) connect to us directly.
    settings = _config.resolve()  # what the node passed down in our environment
    listen = node_address.rpartition("/")[0] + f"/{worker_id}.sock" if node_address.startswith("unix://") \
        else f"tcp://{settings.node_ip or '127.0.0.1'}:0"
    rt = Runtime(node_address=node_address, token=settings.cluster_token or "", node_config=None,
                 namespace=settings.namespace, job_id=settings.job_id, worker_id=worker_id, listen=listen,
                 settings=settings)
    _process.install(rt)
    try:
        rt.start(setup)
    except Exception:  # noqa: BLE001 - the node went away while we started (it is shutting down): just go
        os._exit(1)
    _trim_heap()
    try:
        main_thread.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        rt.stop()
        os._exit(0)


ZYGOTE_FLAG = "--zygote"
PRELOAD = ("tray.transport", "tray.core._runtime", "ctypes")  # what a worker imports as it starts, beyond tray


def _zygote() -> None:
    """Become the node's zygote (:mod:`._forkserver`): with a worker's imports done, fork workers."""
    import importlib

    from ._forkserver import serve

    setproctitle("tray::zygote")
    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # what is here now stays: the children's collections skip it (and leave its pages shared)
    serve(main)


def _libc() -> Any:
    """glibc, to tune its malloc; None elsewhere (other allocators decide for themselves)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc's, or AttributeError
    except (OSError, AttributeError):
        return None
    return libc


def _one_malloc_arena() -> None:
    """Before any thread starts: glibc's malloc gives each thread that allocates an arena of
    its own, about 1.3 MiB resident in an idle worker's few threads; one arena for all costs
    little here (Python's small objects come from its own allocator, under the GIL). A
    MALLOC_ARENA_MAX the user set wins."""
    libc = _libc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(-8, 1)  # M_ARENA_MAX = 1


def _new_event_loop() -> Any:
    """An async actor's asyncio loop: uvloop's where it is installed (as Ray's is), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _trim_heap() -> None:
    """The worker goes idle (started, or its actor created): hand the heap's free pages back
    to the system (about 1.3 MiB that start-up freed; half a millisecond)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


async def _watch_parent() -> None:
    """Stdin is a pipe from the node: its end means the node is gone, and so must we be, at
    once: whatever the running task would still produce has nowhere to go (Ray's workers
    share their raylet's fate too)."""
    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
    os._exit(1)


if __name__ == "__main__":
    main()
