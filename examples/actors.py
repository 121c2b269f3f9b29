"""The actor kernel: spawn a counter actor, talk to it with ask and tell, then stop it.

    python examples/actors.py
"""

import trio

import tray


class Counter(tray.Actor):
    """A stateful actor: its public methods are the messages it understands."""

    def __init__(self, start: int = 0) -> None:
        self.n = start

    def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    async def slow(self, seconds: float) -> float:
        await trio.sleep(seconds)
        return seconds


async def main() -> None:
    async with tray.ActorSystem() as system:
        counter = await system.spawn(Counter, 10, name="counter")
        print(f"spawned {counter!r}")

        print("ask incr(5)       ->", await counter.incr.ask(5))
        await counter.incr.tell(1)  # fire-and-forget, waits for mailbox admission only
        counter.incr.tell_nowait(1)  # never waits; raises MailboxFull if the mailbox is full
        print("after two tells   ->", await counter.incr.ask(0))

        # Async handlers may await; ask() can bound the wait.
        print("ask slow(0.1)     ->", await counter.slow.ask(0.1, timeout=5))

        assert system.lookup("counter") == counter
        await system.stop(counter)
        print("stopped; lookup   ->", system.lookup("counter"))


if __name__ == "__main__":
    trio.run(main)
