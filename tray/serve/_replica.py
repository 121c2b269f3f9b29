"""The replica actor: one instance of the user's class (or function) serving requests.

The controller creates it, calls :meth:`ServeReplica.initialize` (the user's constructor and
``reconfigure``), watches it with a call that only returns when the process dies, and checks
its health; routers send it handle calls, HTTP requests (as ASGI sessions) and stream pulls.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from typing import Any

from tray import lowlevel

from . import _asgi, context
from .deployment import DeploymentSpec, HandleMarker


class Resolved:
    """A DeploymentResponse passed as an argument: its ObjectRef, awaited in the replica."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref


async def _resolve(v: Any) -> Any:
    if isinstance(v, Resolved):
        return await v.ref
    return v


class ServeReplica:
    """The actor class behind every replica (an async actor: the user's coroutines share its loop)."""

    def __init__(self, app_name: str, spec: DeploymentSpec, replica_id: str) -> None:
        self.app_name = app_name
        self.spec = spec
        self.replica_id = replica_id
        self.ongoing = 0
        self.obj: Any = None
        self.call_fn: Any = None  # a ``__call__(request)`` deployment's handler (the fast HTTP path)
        self.asgi: _asgi.ASGIApp | None = None
        self.sessions: dict[int, Any] = {}
        self.streams: dict[int, Any] = {}
        self.ids = itertools.count(1)
        self.idle = asyncio.Event()
        self.idle.set()

    async def initialize(self, user_config: Any) -> str:
        """Run the user's constructor (and ``reconfigure(user_config)``); its exception fails the start."""
        from .handle import DeploymentHandle

        target = lowlevel.loads(self.spec.code)
        args, kwargs = lowlevel.loads(self.spec.init_args)

        def sub(v: Any) -> Any:
            if isinstance(v, HandleMarker):
                return DeploymentHandle(v.deployment_name, self.app_name)
            if isinstance(v, list):
                return [sub(x) for x in v]
            if isinstance(v, tuple):
                return tuple(sub(x) for x in v)
            if isinstance(v, dict):
                return {k: sub(x) for k, x in v.items()}
            return v

        args = tuple(sub(a) for a in args)
        kwargs = {k: sub(v) for k, v in kwargs.items()}
        dep_id = context.DeploymentID(self.spec.name, self.app_name)
        if self.spec.is_function:
            fn = target

            class _Fn:
                def __call__(self, *a: Any, **kw: Any) -> Any:
                    return fn(*a, **kw)

            self.obj = _Fn()
            if args or kwargs:
                raise TypeError(f"function deployment {self.spec.name!r} takes no constructor arguments")
        else:
            context.set_replica(context.ReplicaContext(context.ReplicaID(self.replica_id, dep_id), None))
            self.obj = target(*args, **kwargs)
        context.set_replica(context.ReplicaContext(context.ReplicaID(self.replica_id, dep_id), self.obj))
        app = getattr(type(self.obj), "_serve_asgi_app", None)
        if app is not None:
            from ._ingress import bind_app

            self.asgi = bind_app(app, self.obj)
        elif callable(self.obj):
            self.asgi = _asgi.call_adapter(self.obj)
            self.call_fn = self.obj
        if user_config is not None:
            await self.reconfigure(user_config)
        return self.replica_id

    async def reconfigure(self, user_config: Any) -> None:
        """Apply a new ``user_config`` in place (the same replica, no restart)."""
        fn = getattr(self.obj, "reconfigure", None)
        if fn is None:
            raise AttributeError(f"deployment {self.spec.name!r} has a user_config but no reconfigure() method")
        out = fn(user_config)
        if inspect.isawaitable(out):
            await out

    # ------------------------------------------------------------------ requests

    def _enter(self, meta: tuple[str, str]) -> Any:
        self.ongoing += 1
        self.idle.clear()
        return context.set_request(context.RequestContext(request_id=meta[0], app_name=self.app_name,
                                                          multiplexed_model_id=meta[1]))

    def _leave(self) -> None:
        self.ongoing -= 1
        if self.ongoing == 0:
            self.idle.set()

    def _method(self, name: str) -> Any:
        try:
            return getattr(self.obj, name)
        except AttributeError:
            raise AttributeError(f"deployment {self.spec.name!r} has no method {name!r}") from None

    async def handle_request(self, meta: tuple[str, str], method: str, args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
        """A handle call: run ``method(*args, **kwargs)`` and return its value."""
        self._enter(meta)
        try:
            if any(isinstance(a, Resolved) for a in args):
                args = tuple([await _resolve(a) for a in args])
            if any(isinstance(v, Resolved) for v in kwargs.values()):
                kwargs = {k: await _resolve(v) for k, v in kwargs.items()}
            out = self._method(method)(*args, **kwargs)
            if inspect.isawaitable(out):
                out = await out
            if inspect.isgenerator(out) or inspect.isasyncgen(out):
                raise TypeError(f"{self.spec.name}.{method} returned a generator; call it with "
                                f"handle.options(stream=True)")
            return out
        finally:
            self._leave()

    async def stream_start(self, meta: tuple[str, str], method: str, args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> int:
        """A streaming handle call: start the generator; items are taken with :meth:`stream_pull`."""
        self._enter(meta)
        try:
            args = tuple([await _resolve(a) for a in args])
            kwargs = {k: await _resolve(v) for k, v in kwargs.items()}
            gen = self._method(method)(*args, **kwargs)
            if inspect.isawaitable(gen):
                gen = await gen
        except BaseException:
            self._leave()
            raise
        if not (inspect.isgenerator(gen) or inspect.isasyncgen(gen)):
            self._leave()
            raise TypeError(f"{self.spec.name}.{method} was called with stream=True but returned "
                            f"{type(gen).__name__}, not a generator")
        sid = next(self.ids)
        self.streams[sid] = _Stream(gen, self._leave)
        return sid

    async def stream_pull(self, sid: int) -> tuple[list[Any], bool]:
        """The items yielded since the last pull (waiting for one), and whether the stream ended."""
        st = self.streams[sid]
        items, done = await st.pull()
        if done:
            del self.streams[sid]
        return items, done

    async def stream_cancel(self, sid: int) -> None:
        st = self.streams.pop(sid, None)
        if st is not None:
            st.close()

    async def asgi_start(self, meta: tuple[str, str], scope: dict[str, Any], body: bytes) -> tuple[list[Any], int]:
        """An HTTP request: run the app on it; the whole response, or its start and a session
        id (> 0) to pull the rest from when it streams."""
        if self.asgi is None:
            raise TypeError(f"deployment {self.spec.name!r} does not take HTTP requests (no __call__ or ingress)")
        self._enter(meta)
        if self.call_fn is not None and scope["type"] == "http":
            # the common case, without an ASGI task: call the handler, turn its value into messages
            try:
                result = await _asgi.call_handler(self.call_fn, scope, body)
            except Exception as exc:  # noqa: BLE001 - the client gets a 500 with the traceback
                self._leave()
                return _asgi.error_messages(exc), 0
            msgs = _asgi.plain_response(result)
            if msgs is not None:
                self._leave()
                return msgs, 0
            sess = _asgi.Session(_asgi.response_app(result), scope)
        else:
            sess = _asgi.Session(self.asgi, scope)
        sess.inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        try:
            while not sess.complete():
                if sess.started and sess.outbox and sess.outbox[-1]["type"] == "http.response.body":
                    break  # streaming: hand over what is there, the rest by pulls
                sess.changed.clear()
                await sess.changed.wait()
        except BaseException:
            sess.close()
            self._leave()
            raise
        out, sess.outbox = sess.outbox, []
        if sess.complete() and not sess.outbox:
            await _finish(sess)
            self._leave()
            return out, 0
        sid = next(self.ids)
        self.sessions[sid] = sess
        return out, sid

    async def asgi_open(self, meta: tuple[str, str], scope: dict[str, Any]) -> int:
        """A WebSocket: start the app on it; messages go in by :meth:`asgi_push`, out by :meth:`asgi_pull`."""
        if self.asgi is None:
            raise TypeError(f"deployment {self.spec.name!r} does not take WebSockets")
        self._enter(meta)
        sid = next(self.ids)
        self.sessions[sid] = _asgi.Session(self.asgi, scope)
        return sid

    async def asgi_push(self, sid: int, msg: dict[str, Any]) -> None:
        sess = self.sessions.get(sid)
        if sess is not None:
            sess.inbox.put_nowait(msg)

    async def asgi_pull(self, sid: int) -> tuple[list[Any], bool]:
        sess = self.sessions[sid]
        out, done = await sess.pull()
        if done:
            self.sessions.pop(sid, None)
            self._leave()
        return out, done

    async def asgi_close(self, sid: int) -> None:
        """The client went away: the app gets a disconnect, then is cancelled."""
        sess = self.sessions.pop(sid, None)
        if sess is None:
            return
        kind = "websocket.disconnect" if sess.scope["type"] == "websocket" else "http.disconnect"
        sess.inbox.put_nowait({"type": kind, "code": 1000})
        try:
            await asyncio.wait_for(asyncio.shield(sess.task), 1.0)
        except (TimeoutError, Exception):  # noqa: BLE001 - it is going away either way
            sess.close()
        self._leave()

    # ------------------------------------------------------------------ control

    async def check_health(self) -> None:
        """The user's ``check_health()`` if any; its exception marks the replica unhealthy."""
        fn = getattr(self.obj, "check_health", None)
        if fn is not None:
            out = fn()
            if inspect.isawaitable(out):
                await out

    async def alive(self) -> bool:
        return True

    async def num_ongoing(self) -> int:
        return self.ongoing

    async def prepare_shutdown(self, timeout_s: float) -> None:
        """Wait (up to ``timeout_s``) for the requests in flight to finish."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout_s)
        except TimeoutError:
            pass
        fn = getattr(self.obj, "__del__", None)
        if fn is not None:
            try:
                out = fn()
                if inspect.isawaitable(out):
                    await out
            except Exception:  # noqa: BLE001 - the replica is stopping anyway
                pass

    async def watch(self) -> None:
        """Never returns: the controller's call that fails when this process dies."""
        await asyncio.Event().wait()


async def _finish(sess: _asgi.Session) -> None:
    """Let a finished response's task end (background tasks run after the body is sent)."""
    if not sess.task.done():
        try:
            await asyncio.wait_for(asyncio.shield(sess.task), 30)
        except Exception:  # noqa: BLE001
            pass


class _Stream:
    """A generator's items, buffered for pulls."""

    def __init__(self, gen: Any, on_end: Any) -> None:
        self.items: list[Any] = []
        self.done = False
        self.error: BaseException | None = None
        self.changed = asyncio.Event()
        self.on_end = on_end
        self.task = asyncio.get_running_loop().create_task(self._run(gen))

    async def _run(self, gen: Any) -> None:
        try:
            if inspect.isasyncgen(gen):
                async for item in gen:
                    self.items.append(item)
                    self.changed.set()
            else:
                for item in gen:
                    self.items.append(item)
                    self.changed.set()
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - raised to the consumer after the items
            self.error = exc
        finally:
            self.done = True
            self.changed.set()
            self.on_end()

    async def pull(self) -> tuple[list[Any], bool]:
        while not self.items and not self.done:
            self.changed.clear()
            await self.changed.wait()
        out, self.items = self.items, []
        if self.done and not self.items and self.error is not None and not out:
            raise self.error
        if self.done and self.error is not None:
            # items first; the error on the next pull
            if out:
                return out, False
        return out, self.done and not self.items

    def close(self) -> None:
        self.task.cancel()
