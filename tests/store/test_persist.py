"""The control store's storage backends: a Hypothesis state machine against a dict model
for each backend (put, delete, flush, reopen), SIGKILL durability for SQLite, a Redis
server killed and restarted under a running storage, and the url forms.

Redis tests start a redis-server of their own on a free port and skip, saying why, only
where there is no redis-server on PATH.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tray.store import _persist
from tray.store._persist import MemoryStorage, RedisStorage, SqliteStorage, Storage, open_storage

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not on PATH")
BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=needs_redis)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server on a free port, logging to ``dir``. With ``aof``, every write is
    fsync'd to an append-only file before it is acknowledged, so it outlives a SIGKILL."""

    def __init__(self, dir: Path, aof: bool) -> None:
        self.dir, self.aof, self.port = dir, aof, free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        dir.mkdir()
        self.start()

    def start(self) -> None:
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persist,
             "--dir", str(self.dir), "--logfile", "redis.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{log}")
            time.sleep(0.01)  # poll interval, under the deadline above

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # not -LOADING while it reads its AOF
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``redis_server(aof=False)`` starts a server; every one is killed at teardown."""
    servers: list[RedisServer] = []

    def start(aof: bool = False) -> RedisServer:
        servers.append(RedisServer(tmp_path / f"redis{len(servers)}", aof))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(params=BACKENDS)
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Each call: the url of a fresh, empty storage of the backend."""
    count = itertools.count()
    if request.param == "memory":
        return lambda: "memory://"
    if request.param == "sqlite":
        return lambda: f"sqlite://{tmp_path}/{next(count)}/control.db"
    server = request.getfixturevalue("redis_server")()
    return lambda: f"{server.url}?prefix=m{next(count)}"


def run(afn: Callable[..., Any], *args: Any) -> Any:
    return trio.run(afn, *args)


async def load(url: str) -> dict[str, dict[str, bytes]]:
    async with open_storage(url) as storage:
        return await storage.load()


# --------------------------------------------------------------------------- the model


class LoopThread:
    """A trio loop in a thread, for a state machine's (sync) rules: ``call`` runs an async
    function in it, and ``open`` keeps a storage open in a task of its own until ``close``."""

    def __init__(self) -> None:
        ready: queue.Queue[tuple[trio.lowlevel.TrioToken, trio.Nursery]] = queue.Queue()
        self.thread = threading.Thread(target=trio.run, args=(self._main, ready), daemon=True)
        self.thread.start()
        self.token, self.nursery = ready.get(timeout=10)

    async def _main(self, ready: queue.Queue[tuple[trio.lowlevel.TrioToken, trio.Nursery]]) -> None:
        async with trio.open_nursery() as nursery:
            ready.put((trio.lowlevel.current_trio_token(), nursery))
            await trio.sleep_forever()

    def call(self, afn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run(afn, *args, trio_token=self.token)

    def call_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    async def _hold(self, url: str, task_status: trio.TaskStatus[tuple[Storage, trio.Event]]) -> None:
        async with open_storage(url) as storage:
            close = trio.Event()
            task_status.started((storage, close))
            await close.wait()

    def open(self, url: str) -> Storage:
        self.storage, self._close = self.call(self.nursery.start, self._hold, url)
        return self.storage

    def close(self) -> None:
        self.call(self.storage.aclose)  # its errors raise here; the holder's exit is then a no-op
        self.call_sync(self._close.set)

    def stop(self) -> None:
        self.call_sync(self.nursery.cancel_scope.cancel)
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the test's trio loop did not stop"


TABLES = st.sampled_from(["nodes", "actors", "kv:ns", "é *?[x]"])
KEYS = st.one_of(st.sampled_from(["a", "b", "c"]), st.text(max_size=4))  # few keys: often the same one


class PersistMachine(RuleBasedStateMachine):
    """put/delete/flush/reopen against a dict of what every queued write leaves: after a
    flush, ``load()`` is the model; after a reopen too (or empty, for memory://)."""

    new_url: Callable[[], str]
    survives: bool

    def __init__(self) -> None:
        super().__init__()
        self.url = self.new_url()
        self.loop = LoopThread()
        self.storage = self.loop.open(self.url)
        self.model: dict[str, dict[str, bytes]] = {}

    def teardown(self) -> None:
        self.loop.stop()

    def loaded(self) -> dict[str, dict[str, bytes]]:
        return self.loop.call(self.storage.load)

    @rule(table=TABLES, key=KEYS, value=st.binary(max_size=8))
    def put(self, table: str, key: str, value: bytes) -> None:
        self.loop.call_sync(self.storage.put, table, key, value)
        self.model.setdefault(table, {})[key] = value

    @rule(table=TABLES, key=KEYS)
    def delete(self, table: str, key: str) -> None:
        self.loop.call_sync(self.storage.delete, table, key)
        rows = self.model.get(table, {})
        rows.pop(key, None)
        if not rows:
            self.model.pop(table, None)

    @rule()
    def flush(self) -> None:
        self.loop.call(self.storage.flush)
        assert self.loaded() == self.model

    @rule()
    def reopen(self) -> None:
        self.loop.close()
        if not self.survives:
            self.model = {}
        self.storage = self.loop.open(self.url)
        assert self.loaded() == self.model


def test_the_storage_holds_what_the_model_says(new_url: Callable[[], str]) -> None:
    machine = type("Machine", (PersistMachine,), {"new_url": staticmethod(new_url)})
    machine.survives = new_url() != "memory://"
    run_state_machine_as_test(machine, settings=settings(max_examples=50, stateful_step_count=30, deadline=None))


# --------------------------------------------------------------------------- semantics


def test_writes_coalesce_and_later_ones_win(new_url: Callable[[], str]) -> None:
    url = new_url()

    async def main() -> None:
        async with open_storage(url) as storage:
            storage.put("t", "a", b"1")
            storage.put("t", "a", b"2")
            storage.put("t", "gone", b"x")
            storage.delete("t", "gone")
            storage.delete("u", "never")
            storage.put("u", "only", b"y")
            storage.delete("u", "only")  # the table's last key: the table is gone too
            await storage.flush()
            assert await storage.load() == {"t": {"a": b"2"}}
            storage.delete("t", "a")
            storage.put("t", "a", b"3")
            await storage.flush()
            assert await storage.load() == {"t": {"a": b"3"}}

    run(main)


class GatedStorage(MemoryStorage):
    """Each batch waits for the test's verdict: an exception to fail with, or None to apply."""

    def __init__(self) -> None:
        super().__init__()
        self.verdict, self._verdicts = trio.open_memory_channel[Exception | None](0)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if fn == self._apply and (error := await self._verdicts.receive()):
            raise error
        return await super()._call(fn, *args)


def test_a_failed_batch_is_kept_retried_on_flush_and_overwritten_by_later_writes(monkeypatch) -> None:
    storage = GatedStorage()
    monkeypatch.setattr(_persist, "_storage_for", lambda url: storage)

    async def flush_fails() -> None:
        with pytest.raises(OSError, match="disk full again"):
            await storage.flush()

    async def main() -> None:
        async with open_storage("gated://") as s:
            s.put("t", "k", b"old")
            s.put("t", "gone", b"x")
            await trio.testing.wait_all_tasks_blocked()  # the writer holds that batch
            s.put("t", "k", b"new")  # queued while it is in flight
            s.delete("t", "gone")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flush_fails)
                await trio.testing.wait_all_tasks_blocked()
                await s.verdict.send(OSError("disk full"))  # begun before the flush: it retries...
                await s.verdict.send(OSError("disk full again"))  # ...and raises what its own attempt got
            assert await s.load() == {}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(s.flush)
                await s.verdict.send(None)
            assert await s.load() == {"t": {"k": b"new"}}

    trio.run(main, clock=trio.testing.MockClock())  # time stands still: no retry but the flush's


def test_queued_writes_are_written_without_a_flush(new_url: Callable[[], str]) -> None:
    url = new_url()

    async def main() -> None:
        async with open_storage(url) as storage:
            storage.put("t", "k", b"v")
            with trio.fail_after(5):
                while await storage.load() != {"t": {"k": b"v"}}:
                    await trio.sleep(0.01)  # poll interval, under the deadline above

    run(main)


def test_the_backend_is_chosen_by_the_url(new_url: Callable[[], str]) -> None:
    url = new_url()

    async def main() -> None:
        async with open_storage(url) as storage:
            kind = {"memory": MemoryStorage, "sqlite": SqliteStorage, "redis": RedisStorage}[url.partition(":")[0]]
            assert type(storage) is kind and storage.url == url
        async with open_storage(None) as storage:
            assert type(storage) is MemoryStorage and storage.url == "memory://"

    run(main)


def test_misuse_is_a_clear_error() -> None:
    async def main() -> None:
        async with open_storage(None) as storage:
            with pytest.raises(TypeError, match="bytes, not str"):
                storage.put("t", "k", "text")  # type: ignore[arg-type]
            await storage.aclose()
            await storage.aclose()  # twice is fine
            for use in (lambda: storage.put("t", "k", b""), lambda: storage.delete("t", "k")):
                with pytest.raises(RuntimeError, match="memory:// is closed"):
                    use()
            with pytest.raises(RuntimeError, match="is closed"):
                await storage.flush()

    run(main)


def test_an_error_in_the_body_comes_out_as_itself(new_url: Callable[[], str]) -> None:
    url = new_url()

    async def main() -> None:
        async with open_storage(url) as storage:
            storage.put("t", "k", b"v")
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        run(main)
    if not url.startswith("memory"):
        assert run(load, url) == {"t": {"k": b"v"}}  # flushed on the way out


def test_the_memory_backend_needs_no_thread_and_no_real_time() -> None:
    async def main() -> None:
        async with open_storage("memory://") as storage:
            with trio.fail_after(1):  # under an autojumping clock: fails if anything waits on a thread
                storage.put("t", "k", b"v")
                await storage.flush()
                assert await storage.load() == {"t": {"k": b"v"}}

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_writes_queued_when_the_owner_is_cancelled_are_still_written(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/control.db"

    async def main() -> None:
        with trio.CancelScope() as scope:
            async with open_storage(url) as storage:
                for i in range(50):
                    storage.put("t", str(i), b"v")
                scope.cancel()
                await trio.sleep_forever()
        assert await load(url) == {"t": {str(i): b"v" for i in range(50)}}

    run(main)


# --------------------------------------------------------------------------- durability

CHILD = """
import os, signal, sys, trio
from tray.store._persist import open_storage

async def main():
    async with open_storage(sys.argv[1]) as storage:
        for i in range(200):
            storage.put("t", f"k{i}", b"v%d" % i)
        storage.delete("t", "k0")
        await storage.flush()
        storage.put("t", "unflushed", b"?")  # may or may not have been written: either is right
        os.kill(os.getpid(), signal.SIGKILL)

trio.run(main)
"""


def test_sqlite_keeps_what_was_flushed_when_the_process_is_killed(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/control.db"
    child = subprocess.run([sys.executable, "-c", CHILD, url], capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert (tmp_path / "control.db-wal").exists()  # not closed: the data is in the WAL
    rows = run(load, url)["t"]
    rows.pop("unflushed", None)
    assert rows == {f"k{i}": b"v%d" % i for i in range(1, 200)}


@needs_redis
def test_redis_killed_then_restarted(redis_server: Callable[..., RedisServer]) -> None:
    server = redis_server(aof=True)
    url = f"{server.url}?prefix=p"

    async def main() -> None:
        with pytest.raises(ConnectionError, match=re.escape(url)):  # itself, not in an ExceptionGroup
            async with open_storage(url) as storage:
                storage.put("t", "a", b"1")
                storage.put("t", "b", b"2")
                await storage.flush()
                server.kill()
                storage.put("t", "c", b"3")
                storage.delete("t", "a")
                for i in range(2):  # the next flush tries again, and fails again
                    with trio.fail_after(5), pytest.raises(ConnectionError, match=re.escape(url)):
                        await storage.flush()
                    storage.put("t", "c", b"3%d" % i)  # over the write that failed: this one wins
                await trio.to_thread.run_sync(server.start)
                with trio.fail_after(5):
                    await storage.flush()
                assert await storage.load() == {"t": {"b": b"2", "c": b"31"}}
                server.kill()
                storage.put("t", "lost", b"")  # the last flush, at exit, fails
        await trio.to_thread.run_sync(server.start)
        assert await load(url) == {"t": {"b": b"2", "c": b"31"}}

    run(main)


@needs_redis
def test_redis_prefixes_keep_clusters_apart(redis_server: Callable[..., RedisServer]) -> None:
    server = redis_server()

    async def main() -> None:
        async with open_storage(f"{server.url}/0?prefix=one") as one, open_storage(f"{server.url}/0") as default:
            one.put("t", "k", b"1")
            default.put("t", "k", b"2")
            await one.flush()
            await default.flush()
            assert await one.load() == {"t": {"k": b"1"}}
            assert await default.load() == {"t": {"k": b"2"}}
        async with open_storage(f"{server.url}/1") as other_db:
            assert await other_db.load() == {}

    run(main)


# --------------------------------------------------------------------------- opening


def test_sqlite_makes_its_directories_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "control.db"

    async def main() -> None:
        async with open_storage(f"sqlite://{path}") as storage:
            storage.put("t", "k", b"secret")
            await storage.flush()
            for f in (path, Path(f"{path}-wal")):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f

    old = os.umask(0)  # 0600 whatever the umask
    try:
        run(main)
    finally:
        os.umask(old)


@pytest.mark.parametrize("url", [
    "",
    "memory://x",
    "/abs/path.db",
    "sqlite://relative.db",
    "sqlite:///",
    "sqlite:///dir/",
    "sqlite:///a.db?mode=ro",
    "postgres://host/db",
    "redis://host",
    "redis://host:port",
    "redis://host:6379?prefix=a:b",
])
def test_a_bad_url_is_a_value_error_naming_it_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(url)) + ".*sqlite:///ABSOLUTE/PATH.db"):
        run(load, url)


def test_an_unwritable_sqlite_path_fails_at_open(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    url = f"sqlite://{tmp_path}/file/control.db"  # its "directory" is a file
    with pytest.raises(OSError, match=re.escape(url)):
        run(load, url)
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    url = f"sqlite://{tmp_path}/junk.db"
    with pytest.raises(OSError, match=re.escape(url) + ".*not a database"):
        run(load, url)


def test_an_unreachable_redis_fails_at_open() -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=re.escape(url)):
        run(load, url)
    assert time.monotonic() - start < 5


def test_redis_url_passwords_stay_out_of_messages() -> None:
    url = f"redis://user:hunter2@127.0.0.1:{free_port()}?prefix=x"
    with pytest.raises(ConnectionError) as err:
        run(load, url)
    assert "hunter2" not in str(err.value) and "redis://user:***@127.0.0.1" in str(err.value)


def test_a_redis_url_without_the_redis_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    with pytest.raises(ImportError, match=re.escape('pip install "tray[redis]"')):
        run(load, "redis://127.0.0.1:6379")
