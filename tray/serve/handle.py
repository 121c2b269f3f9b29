"""``DeploymentHandle``, ``DeploymentResponse`` and ``DeploymentResponseGenerator`` (Ray's names).

A handle is a small picklable record (application, deployment, method, options); calling
``.remote()`` hands the call to this process's router loop and returns at once. The response
is a future usable from sync code (``.result()``), asyncio or trio (``await``), and as an
argument of another handle call (it travels as its ObjectRef, not as a value).
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

import trio

from ._router import router_loop
from .config import DEFAULT


class _State:
    """Where a response's ObjectRef lands once the router sent the call (in the router loop)."""

    __slots__ = ("ref", "ref_ready", "fut")

    def __init__(self) -> None:
        self.ref: Any = None
        self.ref_ready = trio.Event()
        self.fut: concurrent.futures.Future | None = None

    async def wait_ref(self) -> Any:
        await self.ref_ready.wait()
        if self.ref is None:  # the call failed before it was sent: its error is the argument's
            assert self.fut is not None
            self.fut.result()
        return self.ref


async def _wait_future(fut: concurrent.futures.Future) -> Any:
    import sniffio

    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return await asyncio.wrap_future(fut)
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    fut.add_done_callback(lambda _f: token.run_sync_soon(done.set))
    await done.wait()
    return fut.result()


class DeploymentResponse:
    """The future result of a handle call (Ray's ``DeploymentResponse``)."""

    def __init__(self, fut: concurrent.futures.Future, state: _State) -> None:
        self._fut = fut
        self._state = state

    def result(self, *, timeout_s: float | None = None) -> Any:
        """Wait for the value (raise what the call raised); TimeoutError after ``timeout_s``."""
        try:
            return self._fut.result(timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the handle call did not finish within {timeout_s} s") from None

    def __await__(self) -> Any:
        return _wait_future(self._fut).__await__()

    def cancel(self) -> None:
        self._fut.cancel()

    def done(self) -> bool:
        return self._fut.done()

    async def _to_object_ref(self) -> Any:
        ref = await _wait_future(_ref_future(self))
        return ref.ref

    def _to_object_ref_sync(self) -> Any:
        return _ref_future(self).result().ref


def _ref_future(resp: DeploymentResponse) -> concurrent.futures.Future:
    async def get() -> Any:
        await resp._state.wait_ref()
        return resp._state.ref

    return router_loop().submit(get)


class DeploymentResponseGenerator:
    """The items of a streaming handle call (``handle.options(stream=True)``), in sync or async ``for``."""

    def __init__(self, recv: trio.MemoryReceiveChannel) -> None:
        self._recv = recv
        self._loop = router_loop()
        self._done = False

    async def _next(self) -> Any:
        try:
            ok, value = await self._recv.receive()
        except trio.EndOfChannel:
            return _END
        if not ok:
            raise value
        return value

    def __iter__(self) -> DeploymentResponseGenerator:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        try:
            v = self._loop.submit(self._next).result()
        except BaseException:
            self._done = True
            raise
        if v is _END:
            self._done = True
            raise StopIteration
        return v

    def __aiter__(self) -> DeploymentResponseGenerator:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        try:
            v = await _wait_future(self._loop.submit(self._next))
        except BaseException:
            self._done = True
            raise
        if v is _END:
            self._done = True
            raise StopAsyncIteration
        return v

    def cancel(self) -> None:
        self._done = True
        self._loop.submit(self._aclose)

    async def _aclose(self) -> None:
        await self._recv.aclose()


_END = object()


class DeploymentHandle:
    """Calls a deployment's replicas: ``handle.method.remote(*args)`` (Ray's ``DeploymentHandle``)."""

    def __init__(self, deployment_name: str, app_name: str = "default", *, method_name: str = "__call__",
                 stream: bool = False, multiplexed_model_id: str = "") -> None:
        self.deployment_name = deployment_name
        self.app_name = app_name
        self._method = method_name
        self._stream = stream
        self._model = multiplexed_model_id

    def options(self, *, method_name: Any = DEFAULT, stream: Any = DEFAULT, multiplexed_model_id: Any = DEFAULT,
                use_new_handle_api: Any = DEFAULT) -> DeploymentHandle:
        return DeploymentHandle(
            self.deployment_name, self.app_name,
            method_name=self._method if method_name is DEFAULT else method_name,
            stream=self._stream if stream is DEFAULT else bool(stream),
            multiplexed_model_id=self._model if multiplexed_model_id is DEFAULT else str(multiplexed_model_id),
        )

    def __getattr__(self, name: str) -> DeploymentHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        loop = router_loop()
        meta = (os.urandom(8).hex(), self._model)
        key = (self.app_name, self.deployment_name)
        if self._stream:
            send, recv = trio.open_memory_channel(256)

            async def stream() -> None:
                await loop.router(*key).stream(self._method, args, kwargs, meta, send)

            loop.submit(stream)
            return DeploymentResponseGenerator(recv)
        state = _State()

        async def call() -> Any:
            try:
                return await loop.router(*key).call(self._method, args, kwargs, meta, state)
            finally:
                state.ref_ready.set()

        fut = loop.submit(call)
        state.fut = fut
        return DeploymentResponse(fut, state)

    def __reduce__(self) -> Any:
        return (_rebuild, (self.deployment_name, self.app_name, self._method, self._stream, self._model))

    def __repr__(self) -> str:
        return f"DeploymentHandle(deployment='{self.deployment_name}', app='{self.app_name}')"


def _rebuild(dep: str, app: str, method: str, stream: bool, model: str) -> DeploymentHandle:
    return DeploymentHandle(dep, app, method_name=method, stream=stream, multiplexed_model_id=model)
