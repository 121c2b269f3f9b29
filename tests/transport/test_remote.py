"""Location transparency between systems over real sockets (two systems, one process)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from remote_actors import Counter, Forwarder, Watcher

import tray
from tray.exceptions import ActorDiedError, AskTimeoutError, NameTakenError, RayTaskError
from tray.transport import NetConfig

TOKEN = "secret"


def _addresses(sockdir: Path) -> list[str]:
    return ["tcp://127.0.0.1:0", f"unix://{sockdir}/b.sock"]


@pytest.fixture(params=["tcp", "unix"])
def address(request: pytest.FixtureRequest, sockdir: Path) -> str:
    return "tcp://127.0.0.1:0" if request.param == "tcp" else f"unix://{sockdir}/b.sock"


def test_spawn_at_ask_tell_lookup(address: str) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            assert b.address is not None and b.address != address or address.startswith("unix")
            ref = await a.spawn(Counter, 5, at=b.address, name="c")
            assert await ref.incr.ask(2) == 7
            await ref.incr.tell(3)
            ref.incr.tell_nowait(1)
            assert await ref.get.ask() == 11
            assert b.lookup("c") == ref  # it lives in b
            assert a.actors() == []
            with pytest.raises(ValueError, match="boom") as ei:
                await ref.boom.ask()
            assert isinstance(ei.value, RayTaskError) and "remote traceback" in str(ei.value)
            found = await a.lookup_remote(b.address, "c")
            assert found == ref and found is ref
            assert await a.lookup_remote(b.address, "nobody") is None
            with pytest.raises(NameTakenError):
                await a.spawn(Counter, at=b.address, name="c")
            with pytest.raises(AttributeError):
                ref.no_such_method  # noqa: B018
            assert await ref.echo.ask({"k": (1, 2.5, None)}) == {"k": (1, 2.5, None)}

    trio.run(main)


def test_refs_in_messages_are_usable_and_come_home_as_local(sockdir: Path) -> None:
    async def main() -> None:
        async with tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as a, tray.ActorSystem(
            address=f"unix://{sockdir}/b.sock", token=TOKEN
        ) as b:
            local = await a.spawn(Counter, 1)
            fwd = await a.spawn(Forwarder, at=b.address)
            # b's Forwarder gets a ref to a's Counter and asks it, over the network
            assert await fwd.call.ask(local, 10) == 11
            # a ref that goes out and comes back is the local one again
            assert await fwd.call.ask(local, 1) == 12
            echoed = await (await a.spawn(Counter, at=b.address)).echo.ask(local)
            assert echoed is local
            # a remote actor spawns on a third address (here: back on a)
            far = await fwd.spawn_on.ask(a.address)
            assert far in a.actors() and await far.get.ask() == 100

    trio.run(main)


def test_per_sender_fifo_and_bulk_values(address: str) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            for i in range(2000):
                if i % 3 == 0:
                    ref.record.tell_nowait(i)
                else:
                    await ref.record.tell(i)
            assert await ref.records.ask() == list(range(2000))
            arr = np.arange(1_000_000, dtype=np.float64)
            back = await ref.echo.ask(arr)
            assert isinstance(back, np.ndarray) and (back == arr).all()
            blob = b"\x01" * (20 * 1024 * 1024)  # above the maximum frame: sent in chunks
            assert await ref.nbytes.ask(blob) == len(blob)
            assert await ref.nbytes.ask(memoryview(blob)[:100_000]) == 100_000

    trio.run(main)


def test_a_thread_sends_itself_only_when_nothing_is_queued_before_it(address: str) -> None:
    """``tell_from_thread`` writes from the calling thread while the connection is idle;
    with the loop's writer busy (a 4 MiB message going out) it declines, so messages
    never overtake one another and bytes from two threads never interleave."""
    big = b"\x02" * (4 << 20)

    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            local = await a.spawn(Counter)
            await ref.get.ask()  # connected
            sent = {"direct": 0, "loop": 0}

            def sender() -> None:
                assert not local.record.tell_from_thread(-1)  # a local actor: only through the loop
                for i in range(400):
                    if i % 40 == 20:
                        trio.from_thread.run_sync(ref.record.tell_nowait, (i, big))
                    elif ref.record.tell_from_thread(i):
                        sent["direct"] += 1
                    else:
                        sent["loop"] += 1
                        trio.from_thread.run_sync(ref.record.tell_nowait, i)
                    if i % 5 == 0:
                        time.sleep(0.001)  # idle now and then: the next one may go directly

            await trio.to_thread.run_sync(sender)
            got = await ref.records.ask()
            assert [x if type(x) is int else x[0] for x in got] == list(range(400))
            assert all(x[1] == big for x in got if type(x) is tuple)
            assert sent["direct"] > 0 and sent["loop"] > 0

    trio.run(main)


def test_messages_from_the_network_keep_their_order_and_their_crash_semantics(address: str) -> None:
    """A message to an idle actor with a sync handler is handled by the reader that
    delivers it; one with an async handler, or one to a busy actor, waits in the mailbox.
    Either way the actor sees them in order, and a handler's crash ends it as before."""
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            for i in range(300):
                if i % 4 == 1:
                    await ref.arecord.tell(i)
                else:
                    ref.record.tell_nowait(i)
                if i % 10 == 0:
                    await ref.get.ask()  # idle again: the next sync one is handled on arrival
            assert await ref.records.ask() == list(range(300))
            fragile = await a.spawn(Counter, at=b.address, decider=lambda exc: "stop")
            with pytest.raises(ValueError, match="boom"):
                await fragile.boom.ask()
            with pytest.raises(ActorDiedError):
                await fragile.get.ask()

    trio.run(main)


@settings(max_examples=25, deadline=None)
@given(plan=st.lists(st.sampled_from(["thread", "loop", "big", "pause"]), min_size=1, max_size=40),
       unix=st.booleans())
def test_any_mix_of_thread_and_loop_sends_arrives_whole_and_in_order(plan: list[str], unix: bool) -> None:
    """Property: whatever the mix of messages a thread writes itself, small and big ones it
    hands the loop, and pauses, the actor gets every message once, intact, in order."""
    big = bytes(range(256)) * (1 << 12)  # 1 MiB: the writer is busy with it for a while
    sockdir = tempfile.mkdtemp(prefix="tray-")

    async def main() -> None:
        address = f"unix://{sockdir}/b.sock" if unix else "tcp://127.0.0.1:0"
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            await ref.get.ask()

            def sender() -> None:
                for i, step in enumerate(plan):
                    if step == "pause":
                        time.sleep(0.0005)
                        msg: object = i
                    else:
                        msg = (i, big) if step == "big" else i
                    if step != "thread" or not ref.record.tell_from_thread(msg):
                        trio.from_thread.run_sync(ref.record.tell_nowait, msg)

            await trio.to_thread.run_sync(sender)
            got = await ref.records.ask()
            assert [m if type(m) is int else m[0] for m in got] == list(range(len(plan)))
            assert all(m[1] == big for m in got if type(m) is tuple)

    try:
        trio.run(main)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def test_a_partial_write_from_a_thread_is_finished_by_the_writer(address: str) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address=address, token=TOKEN) as b:
            ref = await a.spawn(Counter, at=b.address)
            await ref.get.ask()
            peer = ref._cell.peer
            whole = peer._try_send
            peer._try_send = lambda data: whole(memoryview(data)[: max(1, len(data) // 2)])  # a full socket buffer

            def sender() -> list[bool]:
                out = []
                for i in range(20):
                    out.append(ref.record.tell_from_thread(("x" * 200, i)))
                    if not out[-1]:  # the writer is still finishing the last one
                        trio.from_thread.run_sync(ref.record.tell_nowait, ("x" * 200, i))
                    time.sleep(0.001)
                return out

            direct = await trio.to_thread.run_sync(sender)
            peer._try_send = whole
            got = await ref.records.ask()
            assert got == [("x" * 200, i) for i in range(20)]
            assert any(direct)

    trio.run(main)


def test_monitors_links_stop_and_kill_across_systems(sockdir: Path) -> None:
    async def main() -> None:
        async with (
            tray.ActorSystem(token=TOKEN) as a,
            tray.ActorSystem(address=f"unix://{sockdir}/b.sock", token=TOKEN) as b,
        ):
            w = await a.spawn(Watcher)
            r1 = await a.spawn(Counter, at=b.address)
            r2 = await a.spawn(Counter, at=b.address)
            await w.watch.ask(r1)
            await w.link_to.ask(r2)
            await a.stop(r1)  # waits until it is gone
            await a.kill(r2)
            with trio.fail_after(5):
                while True:
                    downs, exits = await w.seen.ask()
                    if downs and exits:
                        break
                    await trio.sleep(0.01)
            assert downs == [(r1, "normal")]
            assert exits == [(r2, "killed")]
            with pytest.raises(ActorDiedError):
                await r1.get.ask()
            # monitoring an actor that is already gone: down at once with noproc
            await w.watch.ask(r1)
            r3 = await a.spawn(Counter, at=b.address)
            await b.stop(next(x for x in b.actors() if x == r3))  # stopped by its own system
            await w.watch.ask(r3)
            with trio.fail_after(5):
                while len((await w.seen.ask())[0]) < 3:
                    await trio.sleep(0.01)
            assert [d[1] for d in (await w.seen.ask())[0]] == ["normal", "noproc", "noproc"]

    trio.run(main)


async def _hosted(nursery: trio.Nursery, **kwargs: object) -> tuple[tray.ActorSystem, trio.Event]:
    """An ActorSystem run by its own task until the returned event is set."""
    stop = trio.Event()

    async def host(task_status: trio.TaskStatus[tray.ActorSystem] = trio.TASK_STATUS_IGNORED) -> None:
        async with tray.ActorSystem(**kwargs) as system:  # type: ignore[arg-type]
            task_status.started(system)
            await stop.wait()

    return await nursery.start(host), stop


def test_peer_shutdown_fails_pending_asks_and_reports_down(sockdir: Path) -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, trio.open_nursery() as nursery:
            w = await a.spawn(Watcher)
            b, stop_b = await _hosted(nursery, address=f"unix://{sockdir}/b.sock", token=TOKEN, shutdown_timeout=0.2)
            ref = await a.spawn(Counter, at=b.address)
            await w.watch.ask(ref)
            errors: list[BaseException] = []

            async def ask_long() -> None:
                try:
                    await ref.sleep.ask(30)
                except ActorDiedError as e:
                    errors.append(e)

            nursery.start_soon(ask_long)
            await trio.sleep(0.05)
            stop_b.set()  # the peer goes away under the ask
            with trio.fail_after(5):
                while not errors or not (await w.seen.ask())[0]:
                    await trio.sleep(0.01)
            (down_ref, reason), = (await w.seen.ask())[0]
            assert down_ref == ref and reason in ("killed", "noconnection")
            with pytest.raises(ActorDiedError):
                await ref.get.ask()

    trio.run(main)


def test_ask_timeout_and_unpicklable_replies_leave_the_connection_working() -> None:
    async def main() -> None:
        async with tray.ActorSystem(token=TOKEN) as a, tray.ActorSystem(address="tcp://127.0.0.1:0", token=TOKEN) as b:
            ref = await a.spawn(Counter, max_concurrency=4, at=b.address)
            with pytest.raises(AskTimeoutError):
                await ref.sleep.ask(1.0, timeout=0.05)
            with pytest.raises(RayTaskError):
                await ref.lock.ask()
            assert await ref.incr.ask() == 1

    trio.run(main)


def test_wrong_token_is_refused_with_a_clear_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with (
            tray.ActorSystem(token="right") as a,
            tray.ActorSystem(address="tcp://127.0.0.1:0", token="wrong") as b,
        ):
            with pytest.raises(ActorDiedError, match="refused"):
                await a.spawn(Counter, at=b.address)
            assert b.actors() == []

    with caplog.at_level(logging.WARNING, logger="tray.transport"):
        trio.run(main)
    assert "wrong cluster token" in caplog.text


def test_token_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAY_CLUSTER_TOKEN", "from-env")

    async def main() -> None:
        async with tray.ActorSystem() as a, tray.ActorSystem(address="tcp://127.0.0.1:0") as b:
            ref = await a.spawn(Counter, at=b.address)
            assert await ref.incr.ask() == 1
            assert a.token == b.token == "from-env"

    trio.run(main)


def test_listening_defaults_to_loopback() -> None:
    async def main() -> None:
        async with tray.ActorSystem(address="tcp://:0", token=TOKEN) as b:
            assert b.address is not None and b.address.startswith("tcp://127.0.0.1:")

    trio.run(main)


def test_missed_heartbeats_over_real_sockets_declare_the_peer_dead(sockdir: Path) -> None:
    """A peer that stops reading and writing (frozen) is declared dead after the timeout."""

    async def main() -> None:
        cfg = NetConfig(heartbeat_interval=0.05, heartbeat_timeout=0.3)
        async with tray.ActorSystem(token=TOKEN, net=cfg) as a, tray.ActorSystem(
            address=f"unix://{sockdir}/b.sock", token=TOKEN, net=cfg
        ) as b:
            ref = await a.spawn(Counter, at=b.address)
            assert await ref.incr.ask() == 1
            for peer in list(b._net.peers):  # freeze b's side of the connection
                peer.scope.cancel()
                peer.close = lambda why: None  # type: ignore[method-assign]
            with trio.fail_after(3):
                with pytest.raises(ActorDiedError):
                    await ref.sleep.ask(10)

    trio.run(main)
