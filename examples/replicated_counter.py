"""A replicated counter (a G-counter CRDT) on three nodes that gossip over a lossy network.

Each replica counts its own increments and merges what the others gossip (per-node
maximum), so lost, duplicated and reordered gossip never breaks it: once the network
heals and a round of gossip gets through, every replica shows the same total.

Runs three nodes in one process on tray.testing's simulated network; the same actors
run unchanged on real nodes (``ActorSystem(address="tcp://...")``).
examples/test_replicated_counter.py checks it with a Hypothesis state machine.
"""

from __future__ import annotations

import trio

import tray
import tray.testing


class Replica(tray.Actor):
    """One replica: ``incr`` locally, ``gossip`` to peers, ``value`` reads."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.counts: dict[str, int] = {}
        self.peers: list[tray.ActorRef] = []

    def set_peers(self, peers: list[tray.ActorRef]) -> None:
        self.peers = list(peers)

    def incr(self, by: int = 1) -> int:
        self.counts[self.node] = self.counts.get(self.node, 0) + by
        return self.value()

    def value(self) -> int:
        return sum(self.counts.values())

    def gossip(self) -> None:
        """Send our state to every peer (fire and forget: the network may lose it)."""
        for peer in self.peers:
            try:
                peer.merge.tell_nowait(dict(self.counts))
            except tray.exceptions.RayError:
                pass  # that peer is unreachable now; a later round will do

    def merge(self, counts: dict[str, int]) -> None:
        for node, n in counts.items():
            if n > self.counts.get(node, 0):
                self.counts[node] = n


NODES = ("a", "b", "c")


async def start_replicas(cluster: tray.testing.Cluster) -> dict[str, tray.ActorRef]:
    """One replica per node, each knowing the others' refs."""
    refs = {name: await cluster.nodes[name].spawn(Replica, name, name="replica") for name in NODES}
    for name, ref in refs.items():
        system = cluster.nodes[name]
        peers = [await system.lookup_remote(cluster.address(o), "replica") for o in NODES if o != name]
        await ref.set_peers.ask(peers)
    return refs


async def main() -> None:
    faults = tray.testing.FaultPlan(drop=0.3, duplicate=0.1, reorder=0.2, delay=(0.0, 0.2))
    async with tray.testing.Cluster(seed=42, net=tray.transport.NetConfig(heartbeat_interval=60)) as cluster:
        for name in NODES:
            await cluster.add_node(name)
        replicas = await start_replicas(cluster)
        cluster.network.faults = faults
        for i in range(30):
            await replicas[NODES[i % 3]].incr.ask()
            await replicas[NODES[i % 3]].gossip.ask()
        cluster.network.faults = tray.testing.FaultPlan()  # the network heals
        for r in replicas.values():
            await r.gossip.ask()
        await trio.sleep(1)
        values = {name: await r.value.ask() for name, r in replicas.items()}
        print("replica values after healing:", values)
        assert set(values.values()) == {30}, values


if __name__ == "__main__":
    tray.testing.run(main, seed=0)
