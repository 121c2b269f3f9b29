"""A real multi-node cluster on one machine, for tests and experiments (Ray's ``ray.cluster_utils``).

Every node is its own process (``python -m tray.cluster._daemon``, what ``tray start``
runs) listening on loopback, with its own worker processes and object store::

    from tray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=2, resources={"gpu_box": 1})
    tray.init(address=cluster.address)
    ...
    cluster.remove_node(node)          # or node.kill(): SIGKILL, as a crash
    cluster.shutdown()
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from typing import Any

from . import _config
from .cluster._launch import head_nodes, kill_group, launch
from .cluster._session import remove_session

__all__ = ["Cluster", "ClusterNode", "cluster_not_supported"]

#: Ray's flag for tests to skip where a multi-node cluster cannot run; tray's runs everywhere it runs.
cluster_not_supported = False

_ARGS = ("num_cpus", "num_gpus", "object_store_memory", "storage", "node_timeout", "port")


class ClusterNode:
    """One node process of a :class:`Cluster`."""

    def __init__(self, record: dict[str, Any], proc: subprocess.Popen, head: bool, args: dict[str, Any]) -> None:
        self.record, self.process, self.head, self.args = record, proc, head, args
        self.node_id: str = record["node_id"]
        self.address: str = record["node_address"]
        self.session_dir: str = record["session_dir"]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the node process, as a crash would (its workers exit when they notice)."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the node gracefully (SIGTERM), then by force if it takes too long."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait()

    def __repr__(self) -> str:
        return f"ClusterNode({'head ' if self.head else ''}{self.node_id} at {self.address}, pid {self.pid})"


class Cluster:
    """Start a head node and worker nodes as real processes on loopback; connect drivers to it."""

    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict[str, Any] | None = None, shutdown_at_exit: bool = True,
                 token: str | None = None) -> None:
        self.token = token or _config.get("cluster_token") or secrets.token_hex(16)
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self._dead: list[ClusterNode] = []
        if shutdown_at_exit:
            import atexit

            atexit.register(self.shutdown)
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the head, for ``tray.init(address=...)``."""
        if self.head_node is None:
            raise RuntimeError("the cluster has no head node yet: call add_node() first")
        return self.head_node.address.partition("://")[2]

    def connect(self, namespace: str | None = None) -> dict[str, Any]:
        import tray

        return tray.init(address=self.address, namespace=namespace)

    def add_node(self, wait: bool = True, resources: dict[str, float] | None = None,
                 labels: dict[str, str] | None = None, **node_args: Any) -> ClusterNode:
        """Start a node (the first one is the head) with ``num_cpus``, ``num_gpus``,
        ``resources``, ``labels``, ``object_store_memory``, ``storage`` (head), ``node_timeout``, ``port``,
        and Ray's ``_system_config`` (the node's settings, as ``tray.init(_system_config=...)`` takes them:
        keys tray has no use for are left alone, as there)."""
        system_config = node_args.pop("_system_config", None) or {}
        unknown = set(node_args) - set(_ARGS)
        if unknown:
            raise ValueError(f"unknown node arguments {sorted(unknown)}; known: "
                             f"{sorted(_ARGS + ('resources', 'labels', '_system_config'))}")
        _config.resolve(system_config, env={})  # a bad value fails here, naming its key
        driver_only = sorted(key for var in _config.VARS.values()
                             if (key := var.key) is not None and key in system_config and var.env is None)
        if driver_only:
            raise ValueError(f"_system_config keys {driver_only} are settings of a driver's own node: "
                             f"pass them to tray.init(_system_config=...) instead")
        settings_env = {var.env: str(system_config[var.key]) for var in _config.VARS.values()
                        if var.key is not None and var.env is not None and system_config.get(var.key) is not None}
        head = self.head_node is None
        argv = ["--head"] if head else ["--address", self.head_node.address]  # type: ignore[union-attr]
        if head:
            node_args.setdefault("port", 0)  # any free port: clusters of parallel test runs must not clash
        for key, value in node_args.items():
            if key == "object_store_memory" and isinstance(value, float):  # Ray takes 1e8: bytes, whole
                value = int(value)
            if value is not None:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        import json

        if resources:
            argv += ["--resources", json.dumps(resources)]
        if labels:
            from .cluster._labels import check_node_labels

            argv += ["--labels", json.dumps(check_node_labels(labels))]
        record, proc = launch(argv, {**os.environ, **settings_env, **_config.to_env(cluster_token=self.token)})
        node = ClusterNode(record, proc, head, {**node_args, "resources": resources, "labels": labels})
        if head:
            self.head_node = node
        else:
            self.worker_nodes.append(node)
        if wait and not head:
            self.wait_for_nodes()
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop ``node`` (gracefully, or with SIGKILL as a crash)."""
        if allow_graceful:
            node.stop()
        else:
            node.kill()
        if node is self.head_node:
            self.head_node = None
        elif node in self.worker_nodes:
            self.worker_nodes.remove(node)
        self._dead.append(node)

    def restart_head(self, kill: bool = True) -> ClusterNode:
        """Kill the head (SIGKILL unless ``kill`` is false) and start a new one on the same port
        and storage: a test of what the control store recovers."""
        old = self.head_node
        if old is None:
            raise RuntimeError("the cluster has no head node")
        old.kill() if kill else old.stop()
        self._dead.append(old)
        port = int(old.address.rpartition(":")[2])
        args = {k: v for k, v in old.args.items() if k not in ("resources", "labels")}
        args["port"] = port
        args.setdefault("storage", old.record.get("storage"))
        self.head_node = None
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.add_node(resources=old.args.get("resources"), labels=old.args.get("labels"), **args)
            except RuntimeError:  # the port may take a moment to be free again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def wait_for_nodes(self, timeout: float = 30.0) -> None:
        """Wait until the head's control store lists every node of this cluster as alive."""
        import trio

        want = {n.node_id for n in self.list_all_nodes()}
        deadline = time.monotonic() + timeout
        while True:
            alive = {n["NodeID"] for n in trio.run(head_nodes, self.head_node.address, self.token) if n["Alive"]}  # type: ignore[union-attr]
            if want <= alive:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {sorted(want - alive)} did not join within {timeout} s")
            time.sleep(0.05)

    def list_all_nodes(self) -> list[ClusterNode]:
        return ([self.head_node] if self.head_node is not None else []) + list(self.worker_nodes)

    def shutdown(self) -> None:
        """Stop every node (worker nodes first); disconnect a driver of this cluster first."""
        import tray

        if tray.is_initialized():
            tray.shutdown()
        for node in list(self.worker_nodes) + ([self.head_node] if self.head_node else []) + self._dead:
            node.stop()
            remove_session(node.session_dir, node.record.get("store_prefix"))
        self.worker_nodes, self.head_node, self._dead = [], None, []
