"""Deterministic testing of actor systems, for users and for tray itself.

- :func:`run` / :func:`deterministic`: one ``trio.run`` under ``MockClock`` with seeded
  scheduling; a failure prints the seed that replays it.
- :class:`Cluster`: several nodes on an in-memory network that can delay, drop,
  duplicate, reorder and partition messages, and crash nodes.
- :class:`ClusterMachine`: a Hypothesis ``RuleBasedStateMachine`` base whose rules
  deliver, drop, duplicate, partition, heal, advance time and crash.
"""

from ..transport import FaultPlan, MemoryNetwork
from ._machine import ClusterMachine, SimRunner
from ._sim import SEED_ENV, Cluster, deterministic, run

__all__ = ["SEED_ENV", "Cluster", "ClusterMachine", "FaultPlan", "MemoryNetwork", "SimRunner", "deterministic", "run"]
