"""Deterministic testing of actor systems, for users and for tray itself.

- :func:`run` / :func:`deterministic`: one ``trio.run`` under ``MockClock`` with seeded
  scheduling; a failure prints the seed that replays it.
- :class:`Cluster`: several nodes on an in-memory network that can delay, drop,
  duplicate, reorder and partition messages, and crash nodes.
- :class:`ClusterMachine`: a Hypothesis ``RuleBasedStateMachine`` base whose rules
  deliver, drop, duplicate, partition, heal, advance time and crash.
- :func:`wait_for_condition` and :class:`SignalActor` (:func:`signal_actor`): synchronise a
  test with real workers without guessed sleeps, as Ray's test utilities do.
- ``pytest -p tray.testing.leaks`` (or ``pytest_plugins = ["tray.testing.leaks"]``): fail any
  test that leaves tray's processes, ``/dev/shm`` files or sockets behind (needs psutil).
"""

from ..transport import FaultPlan, MemoryNetwork
from ._machine import ClusterMachine, SimRunner
from ._sim import SEED_ENV, Cluster, deterministic, run
from ._waiting import SignalActor, signal_actor, wait_for_condition

__all__ = ["SEED_ENV", "Cluster", "ClusterMachine", "FaultPlan", "MemoryNetwork", "SignalActor", "SimRunner",
           "deterministic", "run", "signal_actor", "wait_for_condition"]
