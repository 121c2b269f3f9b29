"""This process's runtime: the one singleton, how it starts (``init``, or on first use as
Ray does) and stops.

Every core module that needs "the runtime of this process" imports this module, which
imports no other core module at load time: the runtime class is imported when ``init``
builds one. So the modules below the Ray face never import the face (``_api``) back.
"""

from __future__ import annotations

import atexit
import os
import secrets
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._config import Settings
    from ._objects import ObjectTable
    from ._runtime import Runtime

_runtime: Runtime | None = None
_runtime_lock = threading.Lock()  # guards the swap
_init_lock = threading.Lock()  # one init or shutdown at a time


def current() -> Runtime | None:
    """This process's runtime, or None before ``init`` (and after ``shutdown``)."""
    return _runtime


def install(rt: Runtime | None) -> None:
    """Make ``rt`` this process's runtime (None: there is none)."""
    global _runtime
    with _runtime_lock:
        _runtime = rt


def current_table() -> ObjectTable | None:
    """The object table refs unpickled in this process join (None: no runtime)."""
    rt = _runtime
    return rt.table if rt is not None else None


def runtime_for_call() -> Runtime:
    """The running runtime, started with ``init()``'s defaults on first use as Ray does."""
    rt = _runtime
    if rt is None:
        init()
        rt = _runtime
        assert rt is not None
    elif rt.owner is not None:  # a call this thread held goes before this one
        rt.owner.calls.lanes.flush()
    return rt


def ask_control(method: str, *args: Any) -> Any:
    """Sync: the head's control store's answer to ``method(*args)`` (starting tray if need be)."""
    rt = runtime_for_call()
    control = getattr(rt, "control", None)
    if control is None:
        raise RuntimeError(f"{method} needs the cluster's control store, which this tray session lacks")

    async def ask() -> Any:
        return await getattr(control, method).ask(*args)

    return call_control(rt, ask)


def call_control(rt: Runtime, afn: Any) -> Any:
    """``rt.call(afn)`` for an ask of the control store: when the store itself is gone (the
    head, or the ``tray.init()`` program whose node this driver joined, has exited), a
    NodeDiedError that says so instead of the dead actor's error."""
    from ..exceptions import ActorDiedError, NodeDiedError

    try:
        return rt.call(afn)
    except ActorDiedError as exc:
        control = getattr(rt, "control", None)
        if control is None or control.alive:
            raise
        raise NodeDiedError(f"the cluster's head at {rt.node_address or 'this process'} is gone (its control "
                            f"store does not answer: {exc}); start tray again (tray.shutdown(), then tray.init(...))"
                            ) from None


def is_initialized() -> bool:
    """Has ``tray.init()`` been called (and not shut down)?"""
    return _runtime is not None


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    namespace: str | None = None,
    object_store_memory: int | None = None,
    ignore_reinit_error: bool = False,
    log_to_driver: bool = True,
    **kwargs: Any,
) -> InitContext:
    """Start tray in this process: a local one-machine cluster, or a driver of a running one.

    Args:
        address: ``None`` or ``"local"`` starts a node inside this process; ``"auto"`` joins
            the cluster running on this machine (the newest ``tray start --head``, else the
            node another program's ``tray.init()`` hosts, as Ray's ``"auto"`` does);
            ``"host:port"`` (or the ``address`` another ``tray.init()`` returned) joins that
            node. Default: ``TRAY_ADDRESS`` if set.
        num_cpus: CPUs of the new local node (default: the machine's).
        num_gpus: GPUs of the new local node (default: the ones found).
        resources: custom resources of the new local node, ``{name: amount}``.
        namespace: the namespace of named actors (default: a fresh one for this job).
        object_store_memory: the node's shared-memory budget in bytes (default: 30% of RAM,
            at most what ``/dev/shm`` holds); objects beyond it spill to
            ``object_spilling_directory`` (default: the session directory).
        ignore_reinit_error: return the running session's description instead of raising
            when tray is already initialized.
        log_to_driver: print what workers print here, prefixed with their origin.
        **kwargs: ``labels``: the new node's labels, ``{key: value}`` (for ``label_selector``;
            it has Ray's ``ray.io/node-id`` too); ``object_spilling_directory``; ``runtime_env``: the job's runtime
            environment (Ray's fields; its tasks and actors run in it, their own
            ``runtime_env`` merged over it); ``job_config`` (``tray.job_config.JobConfig``:
            its ``ray_namespace`` and ``runtime_env``; settings tray cannot honour raise
            NotImplementedError);
            ``_system_config`` with
            ``max_direct_call_object_size`` (100 KiB: larger values go to the store),
            ``memory_usage_threshold`` (0.95) and ``memory_monitor_refresh_ms`` (250; 0: off)
            for the memory monitor that kills a worker when memory runs low,
            ``get_warn_after_s`` (30; or ``TRAY_GET_WARN_AFTER_S``: a ``tray.get`` waiting longer
            logs once what it waits on), ``object_spilling_config`` (Ray's JSON form);
            ``include_dashboard`` (default: on when ``tray[default]`` is installed),
            ``dashboard_host`` (127.0.0.1), ``dashboard_port`` (8265, or a free one if taken);
            ``_metrics_export_port``: the node's own Prometheus port on 127.0.0.1 (default: a
            free one when the node has a dashboard).
            Options Ray accepts that do not apply here (``logging_level``, ...) are accepted
            and ignored.

    Returns:
        A dict describing the session: ``address``, ``namespace``, ``job_id``, ``node_id``,
        ``dashboard_url`` (None without a dashboard); also Ray's ``RayContext`` (see
        :class:`InitContext`: ``address_info``, ``.dashboard_url``, ``with tray.init(): ...``).

    Raises:
        RuntimeError: tray is already initialized (and ``ignore_reinit_error`` is False).
        ValueError: node options given while joining a running cluster, or a bad option.
        ConnectionError: no cluster answers at ``address``.
    """
    from .. import _config
    from ..cluster import node_resources
    from ..cluster._memory import MemoryConfig
    from . import _runtime_envs
    from ._runtime import Runtime

    with _init_lock:
        rt = _runtime
        if rt is not None:
            if ignore_reinit_error:
                return _context(rt)
            raise RuntimeError("tray.init() was already called; call tray.shutdown() first, "
                               "or pass ignore_reinit_error=True")
        settings = _config.resolve(kwargs.get("_system_config"))  # checked before anything starts
        job_config = kwargs.get("job_config")
        if job_config is not None:  # Ray's JobConfig: its namespace; what tray cannot honour is refused by name
            refused = job_config.unsupported()
            if refused:
                raise NotImplementedError(f"tray.init(job_config=...): {', '.join(refused)} not supported by tray")
            if namespace is None:
                namespace = job_config.ray_namespace
        job_env = kwargs.get("runtime_env")  # Ray's rule: init's runtime_env wins over the JobConfig's
        if job_env is None and job_config is not None:
            job_env = job_config.runtime_env or None
        if job_env is None:  # the entrypoint of a submitted job: the job's
            job_env = _runtime_envs.job_default()
        _runtime_envs.check(job_env)  # a bad field fails before anything starts
        address = address or settings.address
        ns = namespace if namespace is not None else uuid.uuid4().hex[:8]
        if address is not None and address != "local":
            given = [k for k, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("resources", resources),
                                    ("object_store_memory", object_store_memory), ("labels", kwargs.get("labels")),
                                    ("_system_config", kwargs.get("_system_config")))
                     if v is not None]
            if given:
                raise ValueError(f"tray.init(address={address!r}): {', '.join(given)} describe a new node and cannot "
                                 f"be given when connecting to a running cluster; pass them to `tray start` instead")
            rt = _connect(address, ns, log_to_driver, settings)
        else:
            from ..cluster._labels import check_node_labels

            labels = check_node_labels(kwargs.get("labels"), "tray.init(labels=...)")  # Ray's labels of the node
            store = _store_options(object_store_memory, kwargs.get("object_spilling_directory"), settings)
            total = node_resources(num_cpus, num_gpus, resources, object_store_memory=store.get("object_store_memory"),
                                   head=True)
            memory = MemoryConfig.of(settings)
            store["dashboard"] = _dashboard_options(kwargs)
            store["metrics"] = _metrics_options(kwargs, store["dashboard"] is not None)
            rt = Runtime(node_address=None, token=secrets.token_hex(16),
                         node_config={"resources": total, "log_to_driver": log_to_driver, "memory": memory, **store,
                                      "labels": labels,
                                      "worker_env": _config.to_env(post_mortem=settings.post_mortem,
                                                                  get_warn_after_s=settings.get_warn_after_s)},
                         namespace=ns, job_id=uuid.uuid4().hex[:8], log_to_driver=log_to_driver, settings=settings)
        install(rt)
        try:
            rt.start()
        except BaseException:
            install(None)
            raise
        try:
            _runtime_envs.set_job_env(rt, job_env)  # its local directories uploaded, once
        except BaseException:
            install(None)
            rt.stop()
            raise
        return _context(rt)


def _connect(address: str, namespace: str, log_to_driver: bool, settings: Settings) -> Runtime:
    """A runtime for a driver of the running cluster at ``address`` ("auto": this machine's)."""
    from ..cluster._session import local_ip_toward, resolve
    from ._runtime import Runtime

    node_address, token = resolve(address)
    return Runtime(node_address=node_address, token=token, node_config=None, namespace=namespace,
                   job_id=uuid.uuid4().hex[:8], listen=f"tcp://{local_ip_toward(node_address)}:0",
                   log_to_driver=log_to_driver, settings=settings)


def _store_options(object_store_memory: int | None, spill_dir: str | None, settings: Settings) -> dict[str, Any]:
    """The object store's settings from init's arguments and ``_system_config`` (Ray's names), checked."""
    out: dict[str, Any] = {}
    if object_store_memory is not None:
        if not isinstance(object_store_memory, (int, float)) or object_store_memory <= 0:
            raise ValueError(f"object_store_memory must be a positive number of bytes, got {object_store_memory!r}")
        out["object_store_memory"] = int(object_store_memory)
    if spill_dir is None:
        spill_dir = settings.object_spilling_directory  # from Ray's object_spilling_config
    if spill_dir is not None:
        out["spill_dir"] = os.path.abspath(os.path.expanduser(str(spill_dir)))
    if settings.max_direct_call_object_size is not None:
        out["inline_limit"] = settings.max_direct_call_object_size
    return out


def _dashboard_options(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Ray's ``include_dashboard`` (default: on when the ``default`` extra is installed),
    ``dashboard_host`` (127.0.0.1) and ``dashboard_port`` (8265, or a free one if taken)."""
    from ..cluster._node import dashboard_available

    include = kwargs.get("include_dashboard")
    if include is None:
        include = dashboard_available()
    elif include and not dashboard_available():
        raise ImportError('include_dashboard=True needs the dashboard\'s packages: pip install "tray[default]"')
    if not include:
        return None
    port = kwargs.get("dashboard_port")
    if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
        raise ValueError(f"dashboard_port must be a port number, got {port!r}")
    return {"host": kwargs.get("dashboard_host") or "127.0.0.1", "port": port}


def _metrics_options(kwargs: dict[str, Any], dashboard: bool) -> dict[str, Any] | None:
    """The node's own Prometheus port: Ray's ``_metrics_export_port`` (default: a free port
    when the node has a dashboard, else none), on 127.0.0.1."""
    from ..cluster._node import dashboard_available

    port = kwargs.get("_metrics_export_port")
    if port is None:
        return {"host": "127.0.0.1", "port": 0} if dashboard else None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
        raise ValueError(f"_metrics_export_port must be a port number, got {port!r}")
    if not dashboard_available():
        raise ImportError('_metrics_export_port needs the dashboard\'s packages: pip install "tray[default]"')
    return {"host": "127.0.0.1", "port": port}


def _dashboard_url(rt: Runtime) -> str | None:
    """The cluster's dashboard URL: this driver's node's, else what the head recorded."""
    if rt.node is not None:
        return rt.node.dashboard_url
    from ..cluster._node import DASHBOARD_URL_KEY

    try:
        raw = rt.call(lambda: rt.control.kv_get.ask(*DASHBOARD_URL_KEY))
    except Exception:  # noqa: BLE001 - a head that does not answer has no dashboard to name
        return None
    return raw.decode() if raw else None


class InitContext(dict):
    """What ``init()`` returns: tray's dict of the session (``address``, ``namespace``, ``job_id``,
    ``node_id``, ``dashboard_url``), and Ray's ``RayContext`` face over it: ``address_info``
    (with Ray's ``webui_url``, ``node_ip_address``, ``gcs_address``), ``dashboard_url`` as an
    attribute in Ray's form (``host:port``, no scheme), ``python_version``, and a context
    manager (``with tray.init(): ...``) whose exit, like ``disconnect()``, shuts tray down."""

    @property
    def dashboard_url(self) -> str | None:
        return _without_scheme(self.get("dashboard_url"))

    @property
    def python_version(self) -> str:
        return "{}.{}.{}".format(*sys.version_info[:3])

    @property
    def address_info(self) -> dict[str, Any]:
        from ..cluster._session import local_ip_toward

        address = self.get("address") or ""
        return {**self, "webui_url": self.dashboard_url, "gcs_address": address,
                "node_ip_address": local_ip_toward(address)}

    def __enter__(self) -> InitContext:
        return self

    def __exit__(self, *exc: Any) -> None:
        shutdown()

    def disconnect(self) -> None:
        """Shut tray down in this process (Ray's ``RayContext.disconnect``)."""
        shutdown()


def _without_scheme(url: str | None) -> str | None:
    return url.partition("://")[2] if url and "://" in url else url


def _context(rt: Runtime) -> InitContext:
    return InitContext(address=rt.node_address or rt.system.address, namespace=rt.namespace, job_id=rt.job_id,
                       node_id=rt.node_id, dashboard_url=_dashboard_url(rt))


def shutdown() -> None:
    """Stop tray in this process: every worker process and actor of this driver's node goes away.

    Does nothing if tray is not initialized; ``tray.init()`` may be called again after it.
    """
    with _init_lock:
        rt = _runtime
        if rt is None:
            return
        install(None)
        rt.stop()
        from . import _runtime_envs

        _runtime_envs.forget_job(rt.job_id)


atexit.register(shutdown)
