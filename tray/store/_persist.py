"""Where the control store persists its tables, so a restarted head recovers the cluster.

The control store keeps its tables in memory and mirrors each change here: ``put`` and
``delete`` only queue the write, so a handler never waits on a disk or a network. One
writer task applies what is queued as one transaction per batch (whatever piled up while
the previous batch was written), batches in the order they were queued, and ``flush``
waits until everything queued before it is durable. The queue keeps only the latest value
of each key: a burst of updates to one key costs one write, and a put then a delete of a
key before a flush leaves it absent. A table with no keys left is absent from ``load()``.

Backends, chosen by ``open_storage(url)``:

- ``memory://`` (or None): a dict, for tests and throwaway clusters; nothing survives. It
  needs no thread, so it runs unchanged under a ``MockClock``.
- ``sqlite:///abs/path.db``: stdlib sqlite3, WAL mode, ``synchronous=FULL`` (a flushed
  write survives the process or the machine dying). One ``(tbl, key, value)`` table, not
  one per logical table: the control store adds a table without DDL or table names
  spliced into SQL, ``load`` is one query and a batch is one transaction of two
  ``executemany``.
- ``redis://host:port[/db][?prefix=NAME]``: one hash ``{prefix}:{table}`` per table,
  through redis-py's sync client; a batch is one MULTI/EXEC pipeline.

Blocking calls (sqlite3, redis-py) run in a worker thread behind a limiter of one, so they
never overlap and the trio loop never blocks. A failed write (Redis down, disk full) goes
back to the queue, under anything queued since: the writer retries it with a capped
backoff, and at once when ``flush`` asks. ``flush`` raises the error of an attempt begun
after it was called instead of waiting for one that succeeds, and timeouts bound every
attempt, so it never hangs. Failures are ``OSError``s naming the url (``ConnectionError``
for an unreachable Redis).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

import trio

URL_FORMS = "memory://, sqlite:///ABSOLUTE/PATH.db or redis://HOST:PORT[/DB][?prefix=NAME]"
RETRY_MIN_S = 0.1  # the writer's first retry after a failed write; the wait doubles...
RETRY_MAX_S = 5.0  # ...up to this
REDIS_TIMEOUT_S = 5.0  # connect and socket timeouts: bound one attempt
SQLITE_BUSY_S = 5.0  # how long to wait for a lock another connection holds
PREFIX = re.compile(r"[\w.-]+")  # a Redis key prefix: no ':' (the separator) or glob characters

Tables = dict[str, dict[str, bytes]]
Batch = dict[tuple[str, str], bytes | None]  # (table, key) -> value; None deletes
T = TypeVar("T")


class Storage:
    """The control store's tables on durable storage; made by ``open_storage``.

    ``put``/``delete`` queue a write and ``flush`` waits for it; call them from the trio
    loop that opened the storage. Backends implement ``_load`` and ``_apply`` (and
    ``_open``/``_close`` if they hold a connection); each runs in a thread via ``_call``.
    """

    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._pending: Batch = {}
        self._queued = 0  # writes queued so far...
        self._done = 0  # ...and how many of them are durable
        self._attempts = 0  # batches the writer has begun
        self._error: Exception | None = None  # why the last attempt failed (None: it didn't)
        self._error_tb: TracebackType | None = None
        self._error_attempt = 0
        self._kick = trio.Event()  # work to do, or a flush waiting
        self._settled = trio.Event()  # an attempt ended (a fresh Event after each)
        self._limiter = trio.CapacityLimiter(1)
        self._writer = trio.CancelScope(shield=True)  # cancelled by aclose, after the last flush
        self._closed = False

    async def load(self) -> Tables:
        """Every table as ``{key: value}``, as durable now (writes still queued are not in it)."""
        self._check_open()
        return await self._call(self._load)

    def put(self, table: str, key: str, value: bytes) -> None:
        """Queue ``table[key] = value``."""
        if not isinstance(value, bytes):
            raise TypeError(f"a stored value must be bytes, not {type(value).__name__}")
        self._queue(table, key, value)

    def delete(self, table: str, key: str) -> None:
        """Queue the removal of ``table[key]`` (a no-op if it is absent)."""
        self._queue(table, key, None)

    async def flush(self) -> None:
        """Wait until every write queued so far is durable; raise if an attempt fails."""
        self._check_open()
        target, started = self._queued, self._attempts
        while self._done < target:
            if self._error is not None and self._error_attempt > started:
                # The traceback as the writer caught it, not grown by each flush re-raising it.
                raise self._error.with_traceback(self._error_tb)
            self._kick.set()
            await self._settled.wait()

    async def aclose(self) -> None:
        """Flush, stop the writer and release the connection; closing twice is a no-op."""
        if self._closed:
            return
        with trio.CancelScope(shield=True):  # the last writes go even when we are cancelled
            try:
                await self.flush()
            finally:
                self._closed = True
                self._writer.cancel()
                await self._call(self._close)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"storage {self.url} is closed")

    def _queue(self, table: str, key: str, value: bytes | None) -> None:
        self._check_open()
        self._pending[table, key] = value
        self._queued += 1
        if self._error is None:  # else the writer is backing off; flush() hurries it
            self._kick.set()

    async def _write(self) -> None:
        """The writer: one batch at a time, a failed batch re-queued under newer writes."""
        backoff = 0.0
        with self._writer:
            while True:
                with trio.move_on_after(backoff or math.inf):
                    await self._kick.wait()
                self._kick = trio.Event()
                if not self._pending:
                    continue
                batch, self._pending = self._pending, {}
                upto = self._queued
                self._attempts += 1
                try:
                    await self._call(self._apply, batch)
                except Exception as exc:  # noqa: BLE001 - any failure is kept and retried; flush() reports it
                    batch.update(self._pending)  # later writes win
                    self._pending = batch
                    self._error, self._error_tb, self._error_attempt = exc, exc.__traceback__, self._attempts
                    backoff = min(max(2 * backoff, RETRY_MIN_S), RETRY_MAX_S)
                else:
                    self._done, self._error, self._error_tb, backoff = upto, None, None, 0.0
                self._settled.set()
                self._settled = trio.Event()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _load(self) -> Tables:
        raise NotImplementedError

    def _apply(self, batch: Batch) -> None:
        raise NotImplementedError


class MemoryStorage(Storage):
    """Tables in a dict: nothing survives the storage being closed."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self._tables: Tables = {}

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        await trio.lowlevel.checkpoint()
        return fn(*args)

    def _load(self) -> Tables:
        return {table: dict(rows) for table, rows in self._tables.items()}

    def _apply(self, batch: Batch) -> None:
        for (table, key), value in batch.items():
            rows = self._tables.setdefault(table, {})
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
            if not rows:
                del self._tables[table]


class SqliteStorage(Storage):
    """Tables as rows of one SQLite table in a file (mode 0600), WAL mode, fsync'd commits."""

    _db: sqlite3.Connection

    def __init__(self, url: str, path: str) -> None:
        super().__init__(url)
        self._path = path

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await super()._call(fn, *args)
        except (OSError, sqlite3.Error) as exc:
            raise OSError(f"{self.url}: {exc}") from exc

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        os.close(os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600))  # sqlite3 would make it 0644
        self._db = sqlite3.connect(self._path, timeout=SQLITE_BUSY_S, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS kv (tbl TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                " PRIMARY KEY (tbl, key)) WITHOUT ROWID"
            )
        except BaseException:
            self._db.close()
            raise

    def _close(self) -> None:
        self._db.close()

    def _load(self) -> Tables:
        tables: Tables = {}
        for table, key, value in self._db.execute("SELECT tbl, key, value FROM kv"):
            tables.setdefault(table, {})[key] = value
        return tables

    def _apply(self, batch: Batch) -> None:
        with self._db:  # COMMIT, or ROLLBACK if anything fails
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                ((table, key, value) for (table, key), value in batch.items() if value is not None),
            )
            self._db.executemany(
                "DELETE FROM kv WHERE tbl = ? AND key = ?", (tk for tk, value in batch.items() if value is None)
            )


class RedisStorage(Storage):
    """One Redis hash per table, ``{prefix}:{table}``. ``url`` hides the password, if any."""

    def __init__(self, parts: SplitResult) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ImportError('a redis:// storage url needs the redis package: pip install "tray[redis]"') from exc
        query = parse_qs(parts.query, keep_blank_values=True)
        self._prefix = query.pop("prefix", ["tray"])[-1]
        if not PREFIX.fullmatch(self._prefix):
            raise ValueError(f"bad prefix {self._prefix!r}: letters, digits, '_', '.' and '-' only")
        host = parts.netloc.rpartition("@")[2]
        netloc = parts.netloc if parts.password is None else f"{parts.username or ''}:***@{host}"
        super().__init__(parts._replace(netloc=netloc).geturl())
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._client = redis.Redis.from_url(
            parts._replace(query=urlencode(query, doseq=True)).geturl(),
            socket_connect_timeout=REDIS_TIMEOUT_S,
            socket_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # the writer retries, not each call
        )

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await super()._call(fn, *args)
        except self._errors as exc:
            raise ConnectionError(f"Redis at {self.url} is unreachable: {exc}") from exc

    def _open(self) -> None:
        self._client.ping()

    def _close(self) -> None:
        self._client.close()

    def _load(self) -> Tables:
        tables: Tables = {}
        skip = len(self._prefix) + 1
        for name in self._client.scan_iter(match=f"{self._prefix}:*", count=1000, _type="HASH"):
            # the client is made without decode_responses: names, keys and values are bytes
            rows = cast("dict[bytes, bytes]", self._client.hgetall(name))
            tables[cast(bytes, name).decode()[skip:]] = {key.decode(): value for key, value in rows.items()}
        return tables

    def _apply(self, batch: Batch) -> None:
        pipe = self._client.pipeline(transaction=True)
        for (table, key), value in batch.items():
            if value is None:
                pipe.hdel(f"{self._prefix}:{table}", key)
            else:
                pipe.hset(f"{self._prefix}:{table}", key, value)
        pipe.execute()


def _storage_for(url: str | None) -> Storage:
    if url is None or url == "memory://":
        return MemoryStorage()
    try:
        parts = urlsplit(url)
        if parts.scheme == "sqlite" and not (parts.netloc or parts.query or parts.fragment):
            if parts.path.startswith("/") and not parts.path.endswith("/"):
                return SqliteStorage(url, parts.path)
        elif parts.scheme == "redis" and parts.port is not None and not parts.fragment:
            return RedisStorage(parts)
    except ValueError as exc:
        raise ValueError(f"bad storage url {url!r} ({exc}): use {URL_FORMS}") from None
    raise ValueError(f"unsupported storage url {url!r}: use {URL_FORMS}")


@asynccontextmanager
async def open_storage(url: str | None) -> AsyncIterator[Storage]:
    """Open the storage at ``url`` (see the module docstring) and run its writer; at exit,
    flush and close it. Raises at once if the storage cannot be reached or created."""
    storage = _storage_for(url)
    await storage._call(storage._open)
    # Entered and left by hand, as ActorSystem does, so that an error of the body or of the
    # last flush comes out as itself, not wrapped in an ExceptionGroup by the nursery.
    nursery_cm = trio.open_nursery()
    nursery = await nursery_cm.__aenter__()
    nursery.start_soon(storage._write)
    try:
        yield storage
    finally:
        try:
            await storage.aclose()
        finally:
            await nursery_cm.__aexit__(None, None, None)
