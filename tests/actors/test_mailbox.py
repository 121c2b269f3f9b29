"""Bounded mailboxes: overflow policies, the system lane, dead letters."""

import pytest
import trio

import tray
from tray.actors._mailbox import ACCEPTED, DROPPED, EVICTED, FULL, Mailbox
from tray.exceptions import ActorDiedError, MailboxFull


class Gate(tray.Actor):
    """Handles nothing until opened, so its mailbox fills up."""

    def __init__(self):
        self.seen = []
        self.gate = trio.Event()

    async def hold(self):
        await self.gate.wait()

    def open(self):
        self.gate.set()

    def put(self, x):
        self.seen.append(x)
        return x

    def seen_so_far(self):
        return list(self.seen)


async def held(system, overflow, capacity=2):
    """A Gate whose single handler slot is busy, with an empty mailbox of ``capacity``."""
    g = await system.spawn(Gate, mailbox=tray.MailboxSpec(capacity=capacity, overflow=overflow))
    await g.hold.tell()
    await trio.testing.wait_all_tasks_blocked()
    return g


def release(system, g):
    """Open the gate from outside: a full mailbox would not take an ``open`` message."""
    system._cells[g.actor_id].instance.gate.set()


async def released(system, g):
    """Release the gate and let the actor drain its mailbox."""
    release(system, g)
    await trio.testing.wait_all_tasks_blocked()


def test_spec_validation():
    with pytest.raises(ValueError):
        tray.MailboxSpec(capacity=0)
    with pytest.raises(ValueError):
        tray.MailboxSpec(overflow="explode")
    with pytest.raises(TypeError):
        tray.MailboxSpec(capacity=1.5)
    assert tray.MailboxSpec().overflow == "block"


@pytest.mark.parametrize(
    "overflow,third",
    [("block", FULL), ("fail", FULL), ("drop_new", DROPPED), ("drop_old", EVICTED)],
)
def test_pure_mailbox_verdicts(overflow, third):
    mb = Mailbox(tray.MailboxSpec(capacity=2, overflow=overflow))
    assert mb.offer(1) == ACCEPTED and mb.offer(2) == ACCEPTED
    assert mb.offer(3) == third
    expected = {"drop_old": [2, 3]}.get(overflow, [1, 2])
    assert list(mb.user) == expected
    if overflow == "drop_old":
        assert mb.evicted == 1


class Sink(tray.Actor):
    def __init__(self):
        self.seen = []

    def put(self, x):
        self.seen.append(x)

    def seen_so_far(self):
        return list(self.seen)


def test_block_applies_backpressure_and_tell_nowait_raises(run):
    async def main():
        async with tray.ActorSystem() as system:
            g = await system.spawn(Gate, mailbox=tray.MailboxSpec(capacity=2))
            await g.hold.tell()  # taken into the handler at once
            await trio.testing.wait_all_tasks_blocked()
            await g.put.tell(1)
            g.put.tell_nowait(2)
            with pytest.raises(MailboxFull, match="full"):
                g.put.tell_nowait(3)
            sent = []

            async def sender():
                await g.put.tell(3)  # waits for room
                sent.append(3)

            async with trio.open_nursery() as n:
                n.start_soon(sender)
                await trio.testing.wait_all_tasks_blocked()
                assert sent == []
                release(system, g)
            assert sent == [3]
            assert await g.seen_so_far.ask() == [1, 2, 3]
            assert system.dead_letter_count == 0

    run(main)


def test_fail_raises_in_sender(run):
    async def main():
        async with tray.ActorSystem() as system:
            g = await held(system, "fail")
            await g.put.tell(1)
            await g.put.tell(2)
            with pytest.raises(MailboxFull):
                await g.put.tell(3)
            with pytest.raises(MailboxFull):
                await g.put.ask(4)
            with pytest.raises(MailboxFull):
                g.put.tell_nowait(5)
            await released(system, g)
            assert await g.seen_so_far.ask() == [1, 2]
            assert system.dead_letter_count == 0  # refused, not accepted: the sender knows

    run(main)


def test_drop_new_turns_the_newcomer_into_a_dead_letter(run):
    async def main():
        async with tray.ActorSystem() as system:
            g = await held(system, "drop_new")
            await g.put.tell(1)
            await g.put.tell(2)
            await g.put.tell(3)  # dropped, the sender is not told
            g.put.tell_nowait(4)  # dropped too
            with pytest.raises(MailboxFull, match="drop_new"):
                await g.put.ask(5)  # an asker would wait forever: it is told
            assert [(d.method, d.args) for d in system.dead_letters] == [("put", (3,)), ("put", (4,)), ("put", (5,))]
            assert all("drop_new" in d.reason for d in system.dead_letters)
            await released(system, g)
            assert await g.seen_so_far.ask() == [1, 2]

    run(main)


def test_drop_old_evicts_the_oldest_and_fails_its_asker(run):
    async def main():
        async with tray.ActorSystem() as system:
            g = await held(system, "drop_old")
            results = []

            async def asker():
                try:
                    results.append(await g.put.ask("first"))
                except MailboxFull as e:
                    results.append(e)

            async with trio.open_nursery() as n:
                n.start_soon(asker)
                await trio.testing.wait_all_tasks_blocked()
                await g.put.tell(2)
                await g.put.tell(3)  # evicts "first"
                await trio.testing.wait_all_tasks_blocked()
                assert len(results) == 1 and isinstance(results[0], MailboxFull)
            assert [d.args for d in system.dead_letters] == [("first",)]
            await released(system, g)
            assert await g.seen_so_far.ask() == [2, 3]

    run(main)


def test_stop_with_queued_messages_gives_dead_letters_and_fails_asks(run):
    async def main():
        async with tray.ActorSystem() as system:
            g = await system.spawn(Gate, mailbox=tray.MailboxSpec(capacity=100))
            await g.hold.tell()
            await trio.testing.wait_all_tasks_blocked()
            outcomes = []

            async def asker(i):
                try:
                    outcomes.append(await g.put.ask(i))
                except ActorDiedError:
                    outcomes.append("died")

            async with trio.open_nursery() as n:
                for i in range(5):
                    n.start_soon(asker, i)
                await trio.testing.wait_all_tasks_blocked()
                await g.put.tell("told")
                stopping = trio.Event()

                async def stopper():
                    await system.stop(g)
                    stopping.set()

                n.start_soon(stopper)
                await trio.testing.wait_all_tasks_blocked()
                # the stop waits for the handler in hand (hold), which we now release
                release(system, g)
            assert outcomes == ["died"] * 5
            assert sorted(str(d.args[0]) for d in system.dead_letters) == ["0", "1", "2", "3", "4", "told"]
            assert all("not handled" in d.reason for d in system.dead_letters)
            # sends after death: a tell is a dead letter, an ask raises at once
            await g.put.tell("late")
            assert system.dead_letters[-1].args == ("late",)
            with pytest.raises(ActorDiedError):
                await g.put.ask("late")

    run(main)


def test_system_lane_overtakes_user_messages(run):
    order = []

    class Watcher(tray.Actor):
        def __init__(self, target):
            self.monitor(target)

        def on_down(self, ref, reason):
            order.append(("down", reason))

        async def work(self, i):
            await trio.sleep(1)
            order.append(i)

    async def main():
        async with tray.ActorSystem() as system:
            victim = await system.spawn(Sink)
            w = await system.spawn(Watcher, victim)
            for i in range(3):
                await w.work.tell(i)
            await trio.testing.wait_all_tasks_blocked()  # work(0) is in hand
            await system.kill(victim)
            await w.work.ask("last")
        assert order == [0, ("down", "killed"), 1, 2, "last"]

    run(main)
