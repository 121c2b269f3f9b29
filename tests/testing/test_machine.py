"""ClusterMachine: a user's protocol under Hypothesis-driven delivery, loss, partitions and crashes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

import tray
import tray.testing as tt
from tray.exceptions import RayError


class Inbox(tray.Actor):
    def __init__(self) -> None:
        self.got: list[tuple[str, int]] = []

    def put(self, sender: str, seq: int) -> None:
        self.got.append((sender, seq))

    def items(self) -> list[tuple[str, int]]:
        return self.got


class FifoMachine(tt.ClusterMachine):
    """Per-sender FIFO: whatever the network loses, what arrives from one sender is in order
    — unless the test itself reorders held messages, which the model tracks."""

    nodes = ("a", "b", "c")
    allow_crash = True

    async def setup(self) -> None:
        self.inbox = await self.cluster.nodes["a"].spawn(Inbox, name="inbox")
        self.remote = {n: await self.cluster.nodes[n].lookup_remote("mem://a", "inbox") for n in ("b", "c")}
        self.sent = {"b": 0, "c": 0}
        self.reordered = False

    @rule(sender=st.sampled_from(("b", "c")))
    def send(self, sender: str) -> None:
        if sender not in self.cluster.nodes:
            return
        self.sent[sender] += 1
        self.call(self._send, sender, self.sent[sender])

    async def _send(self, sender: str, seq: int) -> None:
        try:
            self.remote[sender].put.tell_nowait(sender, seq)
        except RayError:
            pass  # the link is down (crash or timeout): the message is refused, not lost silently

    def deliver(self, i: int) -> None:  # type: ignore[override]
        if i % len(self.network.in_flight) != 0:
            self.reordered = True
        super().deliver(i)

    def duplicate(self, i: int) -> None:  # type: ignore[override]
        self.reordered = True
        super().duplicate(i)

    @invariant()
    def arrivals_are_in_order_and_were_sent(self) -> None:
        if "a" not in self.cluster.nodes:
            return
        got: list[Any] = self.call(self.inbox.items.ask)
        for sender in ("b", "c"):
            seqs = [s for who, s in got if who == sender]
            assert all(1 <= s <= self.sent[sender] for s in seqs)
            if not self.reordered:
                assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


FifoMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
test_fifo_machine = FifoMachine.TestCase


def test_a_failing_machine_reports_the_steps(tmp_path: Any) -> None:
    script = tmp_path / "test_broken.py"
    script.write_text(
        "from hypothesis import settings\n"
        "from hypothesis.stateful import rule\n"
        "import tray.testing as tt\n"
        "class Broken(tt.ClusterMachine):\n"
        "    nodes = ('a', 'b')\n"
        "    @rule()\n"
        "    def oops(self):\n"
        "        assert not self.network.cut, 'partitioned!'\n"
        "Broken.TestCase.settings = settings(max_examples=50, deadline=None)\n"
        "test_broken = Broken.TestCase\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert "state.partition(" in r.stdout and "partitioned!" in r.stdout
