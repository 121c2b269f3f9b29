"""``Cluster.add_node(object_store_memory=...)`` takes a float of bytes, as Ray's does."""

from tray.cluster_utils import Cluster


def test_add_node_with_a_float_object_store_memory():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 1e8})
    try:
        node = c.add_node(num_cpus=1, object_store_memory=2e8)
        assert node.alive()
    finally:
        c.shutdown()
