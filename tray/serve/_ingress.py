"""``@serve.ingress(app)``: a class whose HTTP side is an ASGI app (FastAPI, Starlette, any).

FastAPI routes declared on the class's methods (``@app.get("/") def f(self): ...``) are
re-registered in each replica with ``self`` bound to the replica's instance, so FastAPI sees
the signature without ``self`` and path params, bodies and ``/docs`` work as in Ray.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def _picklable_state() -> None:
    """starlette's ``State`` (every app's ``app.state``) recurses forever when unpickled; it
    travels to replicas as the dict it wraps instead."""
    import copyreg

    try:
        from starlette.datastructures import State
    except ImportError:
        return
    copyreg.pickle(State, lambda s: (State, (dict(s._state),)))


def ingress(app: Any) -> Callable[[type], type]:
    """Serve HTTP for the decorated class with ``app`` (an ASGI app, or a function returning one)."""
    if not callable(app):
        raise TypeError(f"serve.ingress() expects an ASGI app, got {type(app).__name__}")
    _picklable_state()

    def wrap(cls: type) -> type:
        if not inspect.isclass(cls):
            raise TypeError("@serve.ingress decorates a class (put @serve.deployment above it)")
        cls._serve_asgi_app = app  # type: ignore[attr-defined]
        for fn in _class_functions(cls):
            _resolve_annotations(fn)
        return cls

    return wrap


def _resolve_annotations(fn: Any) -> None:
    """Turn string annotations (``from __future__ import annotations``) into the types they name
    while the defining module is at hand: a function pickled by value keeps only the globals its
    body uses, so FastAPI could not resolve ``item: Item`` in the replica."""
    import typing

    try:
        fn.__annotations__ = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - left as they are; FastAPI reports what it cannot resolve
        pass


def bind_app(app: Any, obj: Any) -> Any:
    """The ASGI app this replica serves: ``app`` with the class's route methods bound to ``obj``."""
    try:
        from fastapi import FastAPI
    except ImportError:  # not FastAPI: serve it as it is
        return app
    if not isinstance(app, FastAPI):
        if inspect.isfunction(app) and len(inspect.signature(app).parameters) == 0:
            return app()  # a builder
        return app
    from fastapi.routing import APIRoute, APIWebSocketRoute

    cls = type(obj)
    own = {id(f) for f in _class_functions(cls)}
    router = app.router
    for route in list(router.routes):
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None or id(endpoint) not in own:
            continue
        bound = getattr(obj, endpoint.__name__)
        idx = router.routes.index(route)
        router.routes.remove(route)
        if isinstance(route, APIRoute):
            router.add_api_route(
                route.path, bound, methods=list(route.methods or []), name=route.name,
                response_model=route.response_model, status_code=route.status_code, tags=route.tags,
                dependencies=route.dependencies, summary=route.summary, description=route.description,
                response_description=route.response_description, responses=route.responses,
                deprecated=route.deprecated, include_in_schema=route.include_in_schema,
                response_class=route.response_class, operation_id=route.operation_id,
            )
        elif isinstance(route, APIWebSocketRoute):
            router.add_api_websocket_route(route.path, bound, name=route.name)
        else:
            continue
        router.routes.insert(idx, router.routes.pop())
    app.openapi_schema = None
    return app


def _class_functions(cls: type) -> list[Any]:
    out = []
    for klass in cls.__mro__:
        for v in vars(klass).values():
            if inspect.isfunction(v):
                out.append(v)
    return out
