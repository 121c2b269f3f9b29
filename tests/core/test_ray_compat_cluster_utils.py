"""``Cluster.add_node`` as Ray's: ``object_store_memory`` as a float of bytes, and
``_system_config`` (the node's settings; a driver joining a cluster may not give one)."""

import os

import pytest

import tray
from tray.cluster_utils import Cluster


def test_add_node_with_a_float_object_store_memory():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 1e8})
    try:
        node = c.add_node(num_cpus=1, object_store_memory=2e8)
        assert node.alive()
    finally:
        c.shutdown()


@tray.remote
def setting():
    return os.environ.get("TRAY_MEMORY_MONITOR_REFRESH_MS")


def test_add_node_takes_a_system_config():
    c = Cluster()
    try:
        with pytest.raises(ValueError, match="memory_usage_threshold"):
            c.add_node(num_cpus=1, _system_config={"memory_usage_threshold": "high"})
        with pytest.raises(ValueError, match="tray.init"):
            c.add_node(num_cpus=1, _system_config={"max_direct_call_object_size": 1024})
        assert c.head_node is None  # nothing started for a refused config
        # Ray's keys tray has no use for are left alone, as tray.init leaves them
        head = c.add_node(num_cpus=1, _system_config={"memory_monitor_refresh_ms": 0,
                                                      "object_timeout_milliseconds": 200})
        assert head.alive()
        with pytest.raises(ValueError, match="_system_config"):
            tray.init(address=c.address, _system_config={"memory_monitor_refresh_ms": 0})
        assert not tray.is_initialized()
        tray.init(address=c.address)
        assert tray.get(setting.remote(), timeout=60) == "0"  # the node, and so its workers, took it
    finally:
        tray.shutdown()
        c.shutdown()
