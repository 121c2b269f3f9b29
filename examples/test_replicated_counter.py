"""Property test of the replicated counter: whatever the network does, replicas converge.

A Hypothesis state machine over tray.testing's simulated cluster: rules increment and
gossip, and the built-in rules deliver, drop, duplicate and reorder messages, partition
and heal nodes, and let time pass. Invariants: no replica ever shows more than the
increments made, nor goes backwards; once the network heals and gossip gets through,
all replicas agree on the total.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule
from replicated_counter import NODES, Replica, start_replicas

import tray.testing


class ReplicatedCounterMachine(tray.testing.ClusterMachine):
    nodes = NODES

    async def setup(self) -> None:
        self.replicas = await start_replicas(self.cluster)
        self.total = 0
        self.last_seen = {n: 0 for n in NODES}

    @rule(node=st.sampled_from(NODES), by=st.integers(1, 3))
    def incr(self, node: str, by: int) -> None:
        self.call(self.replicas[node].incr.ask, by)  # local: no network involved
        self.total += by

    @rule(node=st.sampled_from(NODES))
    def gossip(self, node: str) -> None:
        self.call(self.replicas[node].gossip.ask)

    @invariant()
    def never_more_than_made_nor_backwards(self) -> None:
        for node, ref in self.replicas.items():
            v = self.call(ref.value.ask)
            assert self.last_seen[node] <= v <= self.total
            self.last_seen[node] = v

    async def finish(self) -> None:
        await self.quiesce()
        for ref in self.replicas.values():
            await ref.gossip.ask()
        await self.cluster.settle()
        values = {n: await r.value.ask() for n, r in self.replicas.items()}
        assert set(values.values()) == {self.total}, (values, self.total)


ReplicatedCounterMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
test_replicated_counter = ReplicatedCounterMachine.TestCase

_ = Replica
