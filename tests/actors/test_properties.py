"""Property-based tests of the mailbox guarantees: order, no loss, no duplicates."""

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import tray
from tray.actors._mailbox import ACCEPTED, DROPPED, EVICTED, FULL, Mailbox
from tray.exceptions import ActorDiedError


def run_deterministic(afn):
    return trio.run(afn, clock=trio.testing.MockClock(autojump_threshold=0))


class Recorder(tray.Actor):
    def __init__(self):
        self.seen = []

    def record(self, sender, seq):
        self.seen.append((sender, seq))
        return (sender, seq)

    async def record_slowly(self, sender, seq):
        await trio.sleep(0)
        self.seen.append((sender, seq))
        return (sender, seq)

    def log(self):
        return list(self.seen)


# One sender's plan: a list of (kind, yields-before-sending).
plans = st.lists(
    st.lists(st.tuples(st.sampled_from(["tell", "ask", "ask_slow", "tell_nowait"]), st.integers(0, 3)), max_size=25),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(plans=plans, capacity=st.integers(1, 6))
def test_each_senders_messages_arrive_in_order_once(plans, capacity):
    async def main():
        async with tray.ActorSystem() as system:
            r = await system.spawn(Recorder, mailbox=tray.MailboxSpec(capacity=capacity))
            replies = {}

            async def sender(i, plan):
                for seq, (kind, yields) in enumerate(plan):
                    for _ in range(yields):
                        await trio.lowlevel.checkpoint()
                    if kind == "tell":
                        await r.record.tell(i, seq)
                    elif kind == "tell_nowait":
                        while True:  # a full "block" mailbox refuses nowait sends: retry later
                            try:
                                r.record.tell_nowait(i, seq)
                                break
                            except tray.exceptions.MailboxFull:
                                await trio.sleep(0)
                    else:
                        method = r.record if kind == "ask" else r.record_slowly
                        replies[(i, seq)] = await method.ask(i, seq)

            async with trio.open_nursery() as n:
                for i, plan in enumerate(plans):
                    n.start_soon(sender, i, plan)
            seen = await r.log.ask()
            assert system.dead_letter_count == 0
        for i, plan in enumerate(plans):
            assert [seq for s, seq in seen if s == i] == list(range(len(plan)))
        assert len(seen) == sum(map(len, plans))
        assert all(v == k for k, v in replies.items())

    run_deterministic(main)


@settings(max_examples=60, deadline=None)
@given(queued=st.lists(st.sampled_from(["tell", "ask"]), max_size=30), handled_first=st.integers(0, 30))
def test_stop_with_queued_messages_loses_nothing_silently(queued, handled_first):
    """Every message is either handled or a dead letter; every ask ends (reply or error)."""

    class Slow(Recorder):
        async def record(self, sender, seq):
            await trio.sleep(1)
            self.seen.append((sender, seq))
            return seq

    async def main():
        async with tray.ActorSystem() as system:
            r = await system.spawn(Slow, mailbox=tray.MailboxSpec(capacity=100))
            outcomes = {}
            inst = system._cells[r.actor_id].instance

            async def ask(seq):
                try:
                    outcomes[seq] = await r.record.ask(0, seq)
                except ActorDiedError:
                    outcomes[seq] = "died"

            async with trio.open_nursery() as n:
                for seq, kind in enumerate(queued):
                    if kind == "tell":
                        await r.record.tell(0, seq)
                    else:
                        n.start_soon(ask, seq)
                        await trio.testing.wait_all_tasks_blocked()
                await trio.sleep(handled_first + 0.5)
                await system.stop(r)
            handled = [seq for _, seq in inst.seen]
            dead = [d.args[1] for d in system.dead_letters]
        assert sorted(handled + dead) == list(range(len(queued)))
        assert handled == sorted(handled)
        asks = [seq for seq, kind in enumerate(queued) if kind == "ask"]
        assert sorted(outcomes) == asks
        for seq in asks:
            assert outcomes[seq] == (seq if seq in handled else "died")

    run_deterministic(main)


class MailboxMachine(RuleBasedStateMachine):
    """The pure mailbox against a list model, for each overflow policy."""

    @initialize(capacity=st.integers(1, 5), overflow=st.sampled_from(["block", "drop_new", "drop_old", "fail"]))
    def setup(self, capacity, overflow):
        self.mb = Mailbox(tray.MailboxSpec(capacity=capacity, overflow=overflow))
        self.model = []
        self.capacity, self.overflow = capacity, overflow
        self.next = 0

    @rule()
    def offer(self):
        x, self.next = self.next, self.next + 1
        verdict = self.mb.offer(x)
        if len(self.model) < self.capacity:
            assert verdict == ACCEPTED
            self.model.append(x)
        elif self.overflow == "drop_old":
            assert verdict == EVICTED and self.mb.evicted == self.model.pop(0)
            self.model.append(x)
        else:
            assert verdict == (DROPPED if self.overflow == "drop_new" else FULL)

    @rule()
    def take(self):
        if self.model:
            assert self.mb.user.popleft() == self.model.pop(0)

    @rule()
    def drain(self):
        assert self.mb.drain() == self.model
        self.model = []

    @invariant()
    def matches_model(self):
        assert list(self.mb.user) == self.model
        assert len(self.mb) <= self.capacity


TestMailboxMachine = MailboxMachine.TestCase
