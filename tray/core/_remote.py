"""``@tray.remote``: remote functions, actor classes and actor handles (Ray's API)."""

from __future__ import annotations

import functools
import inspect
import os
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from ..exceptions import ActorAlreadyExistsError
from ._actor_calls import ActorRecipe
from ._generators import STREAMING, ObjectRefGenerator, Stream
from ._objects import ObjectRef, collecting, dumps
from ._options import ACTOR_OPTIONS, FUNCTION_OPTIONS, METHOD_OPTIONS, validate, without_defaults
from ._process import current, runtime_for_call
from ._runtime_envs import for_call as _lease_env
from ._signatures import check_call, method_params, params_of
from ._specs import ActorCall, Args, TaskSpec
from ._strategy import placement

follow_next: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = []
"""The debugger's ``remote`` command (``tray.lowlevel.follow_next_task``): the next task
submitted in this process runs ``wrap(fn)`` instead of ``fn``, once."""


def _num_returns(value: Any) -> int:
    """Ray's num_returns as an int (STREAMING for generators); "dynamic" is Ray's deprecated form."""
    if value == "streaming":
        return STREAMING
    if value == "dynamic":
        raise NotImplementedError("num_returns='dynamic' is deprecated in Ray; use num_returns='streaming'")
    return value


def _new_refs(rt: Any, n: int) -> tuple[list[str], list[ObjectRef]]:
    table = rt.table
    ids = [table.new_id() for _ in range(n)]
    for oid in ids:
        table.add_owned(oid)
    return ids, [ObjectRef(oid, None, table) for oid in ids]


def _result(refs: list[ObjectRef], num_returns: int) -> Any:
    """Ray's shape of a call's result: one ref, a list of refs, or None."""
    if num_returns == 1:
        return refs[0]
    return refs if num_returns else None


FUNCTION_SIZE_WARN_THRESHOLD = 10**7
"""A pickled function or actor class bigger than this (bytes) is warned about, as in Ray."""
FUNCTION_SIZE_ERROR_THRESHOLD = int(os.environ.get("FUNCTION_SIZE_ERROR_THRESHOLD", 10**8))
"""...and refused from this size on (Ray's limit, and Ray's variable to raise it)."""


def _check_size(blob: bytes, what: str) -> None:
    """A function or class that captured a big object by accident: warned, or refused, as Ray does."""
    size = len(blob)
    if size <= FUNCTION_SIZE_WARN_THRESHOLD:
        return
    tip = ("Check that its definition is not implicitly capturing a large array or other object in scope. "
           "Tip: use tray.put() to put large objects in the object store.")
    if size < FUNCTION_SIZE_ERROR_THRESHOLD:
        warnings.warn(f"The {what} is very large ({size // 2**20} MiB). {tip}", UserWarning, stacklevel=3)
        return
    raise ValueError(f"The {what} is too large ({size // 2**20} MiB > FUNCTION_SIZE_ERROR_THRESHOLD="
                     f"{FUNCTION_SIZE_ERROR_THRESHOLD // 2**20} MiB). {tip}")


def _with_options(obj: Any, table: dict, options: dict[str, Any], what: str) -> Any:
    """A copy of ``obj`` (a remote function or actor class) with ``options`` laid over its own."""
    validate(table, options, what)
    clone = object.__new__(type(obj))
    clone.__dict__.update(obj.__dict__)
    clone._options = without_defaults({**obj._options, **options})
    return clone


class RemoteFunction:
    """A function run as a task: ``f.remote(*args)`` returns an ObjectRef of its result."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        if inspect.iscoroutinefunction(fn):  # Ray's rule: tasks are sync; async code belongs in actors
            raise ValueError(f"'async def' should not be used for remote tasks ({fn.__name__!r}). You can wrap "
                             f"the async function with `asyncio.run(f())`, or make it a method of an async actor.")
        self._fn = fn
        self._options = without_defaults(validate(FUNCTION_OPTIONS, options, f"remote function {fn.__name__!r}"))
        self._params = params_of(fn)
        self._fn_id = uuid.uuid4().hex
        self._blob: bytes | None = None
        self._prepare()
        functools.update_wrapper(self, fn)

    def _prepare(self) -> None:
        """What every call made through this function (and its options) shares, worked out
        once: its name, its number of returns, and where it runs (once known, for callers
        not in a placement group that captures its children, whose calls go there)."""
        opts = self._options
        self._name = opts.get("name") or self._fn.__name__
        default = "streaming" if inspect.isgeneratorfunction(self._fn) else 1  # Ray's generators stream
        self._num_returns = _num_returns(opts.get("num_returns", default))
        self._placed: tuple[dict[str, int], tuple | None] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running '{self._fn.__name__}()',"
            f" try '{self._fn.__name__}.remote()'."
        )

    def options(self, **options: Any) -> RemoteFunction:
        """The same function with some options changed, for the calls made through it."""
        clone = _with_options(self, FUNCTION_OPTIONS, options, f"remote function {self._fn.__name__!r}")
        clone._prepare()
        return clone

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        check_call(self._params, args, kwargs, f"{self._fn.__name__}.remote()")
        rt = runtime_for_call()
        opts, name, num_returns = self._options, self._name, self._num_returns
        if self._blob is None:
            try:
                blob = dumps(self._fn)
            except TypeError as exc:
                raise TypeError(f"remote function {name!r} {exc}") from None
            _check_size(blob, f"remote function {self._fn.__qualname__!r}")
            self._blob = blob
        placed = self._placed
        if placed is None or rt.capture_child_tasks:
            placed = placement(opts, 1, name, rt)
            if not rt.capture_child_tasks:  # (then it depends on the options alone)
                self._placed = placed
        shape, strategy = placed
        packed = Args(rt.table, args, kwargs, f"{name}.remote()")
        ids, refs = _new_refs(rt, max(num_returns, 0))
        task_id = ids[0] if ids else rt.table.new_id()
        fn_id, blob = self._fn_id, self._blob
        if follow_next:  # followed into its worker by the debugger: a function of its own, this once
            fn_id, blob = uuid.uuid4().hex, dumps(follow_next.pop()(self._fn))
        spec = TaskSpec(task_id, name, fn_id, blob, packed, ids, num_returns,
                        opts.get("max_retries", 3), opts.get("retry_exceptions", False), shape, strategy, rt.table,
                        _lease_env(rt, opts.get("runtime_env")))
        if num_returns == STREAMING:
            stream = spec.stream = rt.owner.streams[task_id] = Stream(rt.table, task_id)
            rt.soon(rt.owner.submit_task, spec, rt.current_task_id)
            return ObjectRefGenerator(stream)
        rt.owner.calls.lanes.submit_task(spec, rt.current_task_id)
        return _result(refs, num_returns)


class ActorClass:
    """A class whose instances live in worker processes: ``Cls.remote(*args)`` returns a handle."""

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        self._cls = cls
        self._options = without_defaults(validate(ACTOR_OPTIONS, options, f"actor class {cls.__name__!r}"))
        self._blob: bytes | None = None
        self._methods = _method_table(cls)
        self._params = params_of(cls)
        self.__module__ = cls.__module__  # as Ray's actor class shows them (``__name__`` is the user class's too)
        self.__doc__ = cls.__doc__

    def __getattr__(self, name: str) -> Any:
        """The user class's attributes, classmethods and staticmethods (as Ray's actor class shows them)."""
        cls = self.__dict__.get("_cls")
        if cls is None or name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(cls, name)
        except AttributeError:
            raise AttributeError(f"actor class {cls.__name__!r} has no attribute {name!r}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._cls.__name__
        raise TypeError(f"Actors cannot be instantiated directly. Instead of '{name}()', use '{name}.remote()'.")

    def __mro_entries__(self, bases: tuple) -> tuple:
        """``class Derived(SomeActorClass)``: Ray's TypeError, not a confusing one from Python."""
        raise TypeError("Inheriting from actor classes is not currently supported. You can instead inherit from "
                        f"a non-actor base class ({self._cls.__name__!r}, before @tray.remote) and make the derived "
                        "class an actor class (with @tray.remote).")

    def options(self, **options: Any) -> ActorClass:
        """The same class with some options changed, for the actors created through it."""
        return _with_options(self, ACTOR_OPTIONS, options, f"actor class {self._cls.__name__!r}")

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        check_call(self._params, args, kwargs, f"{self._cls.__name__}.remote()")
        rt = runtime_for_call()
        opts = self._options
        cls_name = self._cls.__name__
        if opts.get("get_if_exists") and not opts.get("name"):  # Ray's check
            raise ValueError("The actor name must be specified to use `get_if_exists`.")
        if self._blob is None:
            try:
                blob = dumps(_with_builtins(self._cls))
            except TypeError as exc:
                raise TypeError(f"actor class {cls_name!r} {exc}") from None
            _check_size(blob, f"actor class {cls_name!r}")
            self._blob = blob
        actor_id = uuid.uuid4().hex[:16]
        name = opts.get("name")
        namespace = opts.get("namespace") or rt.namespace
        retries = opts.get("max_task_retries", 0)
        detached = opts.get("lifetime") == "detached"
        shape, strategy = placement(opts, 0, self._cls.__qualname__, rt)  # Ray names the class so in its errors
        renv = _lease_env(rt, opts.get("runtime_env"))  # before anything is registered: an upload may fail
        register = (actor_id, name, namespace, cls_name, self._methods, rt.owner_ref, rt.job_id, detached)
        if name is not None or detached:  # names are checked now, as Ray does: a taken one raises here
            held = rt.call(_register, rt, *register, opts.get("get_if_exists", False))
            if held is not None:
                return ActorHandle(held, cls_name, self._methods, rt.job_id, retries)
        else:
            rt.soon(rt.control.register_actor.try_tell, *register)
        packed = Args(rt.table, args, kwargs, f"{cls_name}.remote()")
        recipe = ActorRecipe(cls_name, self._blob, packed, shape, opts.get("max_concurrency"),
                             opts.get("max_restarts", 0), strategy, detached, opts.get("concurrency_groups"), renv)
        token = None
        if not detached:  # ended once its last handle anywhere is gone, named or not (Ray's rule)
            rt.owner.calls.collectable.add(actor_id)
            if callable(getattr(self._cls, "__ray_shutdown__", None)):  # Ray's cleanup hook, run at that end
                rt.owner.calls.shutdown_hooks.add(actor_id)
            token = ObjectRef(rt.table.add_handle(actor_id), None, rt.table)
        handle = ActorHandle(actor_id, cls_name, self._methods, rt.job_id, retries, token)
        rt.soon(rt.owner.calls.create_actor, actor_id, recipe)
        return handle


async def _register(rt: Any, *args: Any) -> Any:
    """Register a named or detached actor, durably (a restarted head must know it)."""
    try:
        held = await rt.control.register_actor.ask(*args)
    except ValueError:  # the name is taken: Ray's error, raised here rather than the control store's
        name, namespace = args[1], args[2]
        raise ActorAlreadyExistsError(
            f"an actor named {name!r} already exists in namespace {namespace!r}: use another name, or get the "
            f"existing actor with tray.get_actor({name!r}, namespace={namespace!r})") from None
    await rt.control.flush.ask()
    return held


class _Builtins:
    """The methods Ray gives every actor besides its class's own."""

    def __ray_ready__(self) -> bool:
        """True once the actor is up (``tray.get(a.__ray_ready__.remote())`` waits for its ``__init__``)."""
        return True

    def __ray_terminate__(self) -> None:
        """End the actor gracefully, after the calls sent before this one (``exit_actor()`` from outside)."""
        from ._exit import exit_actor

        exit_actor()


_BUILTINS = ("__ray_ready__", "__ray_terminate__")


def _with_builtins(cls: type) -> type:
    """What runs in the worker: the user's class with Ray's built-in methods (a subclass under
    the same names, as Ray's own; the user's class is left as it was)."""
    if all(hasattr(cls, name) for name in _BUILTINS):
        return cls
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls)(cls.__name__, (cls, _Builtins), namespace)


def _method_table(cls: type) -> dict[str, dict[str, Any]]:
    """Each callable method's options (``@tray.method``), by name, with its parameters under
    ``"signature"`` (calls are checked against them where they are made); dunders excluded.
    A generator method (sync or async) streams its items unless told otherwise, as in Ray."""
    table = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") or not callable(member):
            continue
        options = getattr(member, "__tray_method_options__", {})
        if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
            options = {"num_returns": "streaming", **options}
        table[name] = {**options, "signature": method_params(cls, name)}
    for name in _BUILTINS:  # Ray's built-in methods, on every actor
        table.setdefault(name, {"signature": method_params(_Builtins, name)})
    return table


class ActorHandle:
    """A handle on a remote actor: ``handle.method.remote(*args)`` returns an ObjectRef.

    Picklable: pass it to tasks and other actors, which then call the same actor. A
    handle made by ``.remote()`` (and its copies, wherever they travel) keeps its actor
    alive: the actor ends when the last one anywhere is gone, as in Ray. Handles from
    ``get_actor`` and ``current_actor`` do not count (Ray's weak handles), nor do a
    detached actor's.
    """

    def __init__(self, actor_id: str, class_name: str, methods: dict[str, dict[str, Any]], job_id: str,
                 max_task_retries: int = 0, token: ObjectRef | None = None) -> None:
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._job_id = job_id  # actors die with their session: a handle is good for its job only
        self._max_task_retries = max_task_retries
        self._token = token  # counts this handle where the actor's creator counts them; None: weak

    def __getattr__(self, name: str) -> ActorMethod:
        methods = self.__dict__.get("_methods")
        if methods is None or name not in methods:
            raise AttributeError(f"'{self.__dict__.get('_class_name', 'actor')}' actor has no method {name!r}")
        return ActorMethod(self, name, methods[name])

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __reduce__(self) -> tuple[Any, ...]:
        token = self._token
        if token is not None and token._table is not None and not collecting():
            # pickled outside tray's serializers (cloudpickle by hand, deepcopy, a library's
            # own messages): nobody can count the copy, so this process keeps the actor for good
            token._table.pin([token._id], +1)
        return (ActorHandle, (self._actor_id, self._class_name, self._methods, self._job_id, self._max_task_retries,
                              token))


class ActorMethod:
    """``handle.method``: ``.remote(*args)`` calls it, ``.options(num_returns=...)`` adjusts it."""

    def __init__(self, handle: ActorHandle, name: str, options: dict[str, Any]) -> None:
        self._handle, self._name, self._options = handle, name, options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"Actor methods cannot be called directly. Instead of '{self._name}()', try"
                        f" '{self._name}.remote()'.")

    def options(self, **options: Any) -> ActorMethod:
        validate(METHOD_OPTIONS, options, f"actor method {self._name!r}")
        return ActorMethod(self._handle, self._name, without_defaults({**self._options, **options}))

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        h = self._handle
        rt = current()
        if rt is None or h._job_id != rt.job_id:
            raise RuntimeError(f"{h!r} belongs to a tray session that was shut down; its actor is gone")
        check_call(self._options.get("signature"), args, kwargs, f"{h._class_name}.{self._name}.remote()")
        num_returns = _num_returns(self._options.get("num_returns", 1))
        packed = Args(rt.table, args, kwargs, f"{h._class_name}.{self._name}.remote()")
        ids, refs = _new_refs(rt, max(num_returns, 0))
        retries = self._options.get("max_task_retries", h._max_task_retries)
        call = ActorCall(h._actor_id, self._name, packed, ids, num_returns, rt.table, retries,
                         self._options.get("concurrency_group"))
        if num_returns == STREAMING:  # a generator method: its items come as it yields them
            stream_id = rt.table.new_id()
            call.stream = rt.owner.streams[stream_id] = Stream(rt.table, stream_id)
        rt.owner.calls.lanes.submit(call)
        return _result(refs, num_returns) if call.stream is None else ObjectRefGenerator(call.stream)


def method(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@tray.method(num_returns=2)`` on an actor method: its default call options."""
    validate(METHOD_OPTIONS, options, "@tray.method")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__tray_method_options__ = options  # type: ignore[attr-defined]
        return fn

    return mark


class RemoteMisuse(TypeError, AssertionError):
    """``@remote()`` with empty parentheses, or with positional arguments: a TypeError, and
    the AssertionError Ray raises for it (code written for Ray may catch that)."""


def remote(*args: Any, **options: Any) -> Any:
    """``@tray.remote`` or ``@tray.remote(num_cpus=2, ...)`` on a function or a class.

    Args:
        *args: the function (a task) or class (an actor class), when used bare.
        **options: Ray's options, checked now: for functions ``num_cpus``, ``num_gpus``,
            ``memory``, ``resources``, ``num_returns`` (an int, or ``"streaming"``),
            ``max_retries``, ``retry_exceptions``, ``scheduling_strategy``, ...; for classes
            ``max_restarts``, ``max_task_retries``, ``max_concurrency``, ``name``,
            ``namespace``, ``lifetime``, ... (``.options()`` overrides them per call).

    Returns:
        A :class:`RemoteFunction` or :class:`ActorClass` (call ``.remote()`` on it), or,
        with options only, the decorator that makes one.
    """
    if len(args) == 1 and not options and (inspect.isfunction(args[0]) or inspect.isclass(args[0])):
        return _make(args[0], {})
    if not args and not options:  # Ray's rule: bare, or with options
        raise RemoteMisuse("The @tray.remote decorator must be applied either with no arguments and no parentheses, "
                           "for example '@tray.remote', or with some of its options: '@tray.remote(num_cpus=1)'")
    if args:
        raise RemoteMisuse("@tray.remote takes a function or class, or only keyword options: @tray.remote(num_cpus=1)")

    def wrap(target: Any) -> Any:
        return _make(target, options)

    return wrap


def _make(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        return ActorClass(target, options)
    if callable(target):
        return RemoteFunction(target, options)
    raise TypeError(f"@tray.remote needs a function or a class, got {target!r}")
