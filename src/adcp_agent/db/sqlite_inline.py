"""SQLite for the async engine without a thread per statement.

aiosqlite runs every cursor call (cursor, execute, fetchall, close, rollback) on a
worker thread and hops back to the event loop: five hops per statement, each a queue
put, a thread wake-up, a self-pipe write and a GIL hand-over. Our statements are index
probes that take microseconds, so the hops *were* the cost of a request (measured in
benchmarks/RESULTS.md). This module gives SQLAlchemy's aiosqlite dialect a connection
with the same interface that runs statements inline on the event loop thread.

What the thread used to give us, and how it is kept:

* **Writers never block the loop on a lock.** SQLite allows one writer. Within this
  process, a write transaction takes an asyncio lock (one per engine, i.e. per
  ``Database``; use a ``Database`` from one event loop) at its first writing statement
  and holds it until commit or rollback; a second writer awaits the
  lock instead of spinning in SQLite's busy handler on the loop thread. Against other
  processes (the CLI approving a task while the server runs) SQLite's busy timeout is
  off and ``SQLITE_BUSY`` is retried with ``asyncio.sleep`` for up to ``busy_timeout``.
* **A slow fsync stays off the loop.** ``COMMIT`` (with ``synchronous=FULL`` it waits
  for the WAL to reach the disk) runs on a worker thread once commits have been slow,
  inline while they are fast (``CommitTimer``): handing a commit to a thread and back
  costs ~0.2 ms of CPU in wake-ups, several times a local SSD's fsync.
* Reads are WAL snapshot reads: they never wait for a writer.

Python's sqlite3 (legacy transaction control, as SQLAlchemy's pysqlite dialect uses it)
begins a transaction implicitly before the first INSERT/UPDATE/DELETE/REPLACE and runs
SELECTs in autocommit, so "a write transaction" starts exactly at a writing statement.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 10.0
# Statements that write, or open a transaction that may (BEGIN/SAVEPOINT: a read taken
# inside one pins a snapshot, and a later write in it could never succeed by waiting),
# or may write (WITH ... INSERT). A plain SELECT runs in autocommit and never waits.
_WRITE_VERBS = (
    "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER",
    "BEGIN", "SAVEPOINT", "WITH",
)  # fmt: skip


def _writes(operation: str) -> bool:
    text = operation.lstrip()
    while text.startswith(("--", "/*")):  # leading comments
        end = text.find("\n") + 1 if text.startswith("--") else text.find("*/") + 2
        if end <= 1:
            return False
        text = text[end:].lstrip()
    return text[:9].upper().startswith(_WRITE_VERBS)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text


class InlineCursor:
    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        await self._owner._run(operation, lambda: self._cursor.execute(operation, parameters))
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        rows = list(seq_of_parameters)  # a retry must see the same parameters
        await self._owner._run(operation, lambda: self._cursor.executemany(operation, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _CursorFactory:
    """``connection.cursor()`` in aiosqlite is awaitable and an async context manager."""

    def __init__(self, owner: InlineConnection) -> None:
        self._owner = owner

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._owner, self._owner._conn.cursor())

    async def __aexit__(self, *_exc: object) -> None:
        return None

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's dialect reaches into
    to set ``isolation_level``: run the function now and resolve its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


# A commit runs inline while commits take this long on average, on a thread beyond.
INLINE_COMMIT_SECONDS = 0.0005


class CommitTimer:
    """How long recent commits took, wherever they ran (one per engine, like the lock).
    While the average stays under ``INLINE_COMMIT_SECONDS`` the event loop waits out
    the fsync itself: cheaper than two thread wake-ups. A slow disk (network storage,
    a spinning one) or a slow commit (a WAL checkpoint) sends the next ones to a
    worker thread until commits are fast again."""

    def __init__(self) -> None:
        self.average = 0.0

    @property
    def inline(self) -> bool:
        return self.average < INLINE_COMMIT_SECONDS

    def timed_commit(self, conn: sqlite3.Connection) -> None:
        began = time.perf_counter()
        try:
            conn.commit()
        finally:
            self.average += (time.perf_counter() - began - self.average) * 0.25


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` SQLAlchemy's aiosqlite dialect uses."""

    sends_together = False  # each statement costs no round trip (statements.Writes)

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: asyncio.Lock,
        busy_seconds: float,
        commits: CommitTimer | None = None,
        committed: Callable[[], None] | None = None,
    ) -> None:
        self._connection: sqlite3.Connection | None = conn
        self._commits = commits or CommitTimer()
        self._committed = committed
        self._durable = True  # synchronous=FULL, as SqliteFile's PRAGMAs set it
        self._lock = lock
        self._holds_lock = False
        self._busy_seconds = busy_seconds
        self._tx = _ImmediateQueue()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _run(self, operation: str, step: Callable[[], Any]) -> Any:
        conn = self._conn
        if not self._holds_lock and not conn.in_transaction and _writes(operation):
            await self._take_lock()
        try:
            return await self._retry_busy(step)
        finally:
            if self._holds_lock and not conn.in_transaction:
                self._release()  # an autocommit write, or a statement that failed

    async def _retry_busy(self, step: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._busy_seconds
        delay = 0.001
        while True:
            try:
                return step()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def run(self, operation: str, parameter_sets: list[Sequence[Any]]) -> int:
        """A writing statement, once per parameter set; the rows it changed."""
        cursor = self._conn.cursor()
        try:
            if len(parameter_sets) == 1:
                await self._run(operation, lambda: cursor.execute(operation, parameter_sets[0]))
            else:
                await self._run(operation, lambda: cursor.executemany(operation, parameter_sets))
            return cursor.rowcount
        finally:
            cursor.close()

    async def fetch(self, operation: str, parameters: Sequence[Any]) -> list[Any]:
        cursor = self._conn.cursor()
        try:
            await self._run(operation, lambda: cursor.execute(operation, parameters))
            return cursor.fetchall()
        finally:
            cursor.close()

    async def _take_lock(self) -> None:
        # asyncio.timeout, not wait_for: that ran every acquisition as a task of its own.
        try:
            async with asyncio.timeout(self._busy_seconds):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._holds_lock = True

    async def begin_immediate(self, *, durable: bool = True) -> None:
        """Take the process's write lock, then SQLite's (``BEGIN IMMEDIATE``, retried
        while another process holds it): a transaction that will write, begun up front.
        ``durable=False``: its COMMIT is not fsynced (``synchronous=NORMAL``; the WAL
        still survives the process being killed, and the next durable commit on any
        connection flushes it too): for rows whose loss in a power failure is harmless."""
        await self._take_lock()
        try:
            conn = self._conn
            if durable != self._durable:  # not settable inside a transaction
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            await self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        self._holds_lock = False
        self._lock.release()

    def cursor(self) -> _CursorFactory:
        return _CursorFactory(self)

    async def commit(self) -> None:
        conn = self._conn
        try:
            if conn.in_transaction:
                await self._commit(conn)
                if self._committed is not None:
                    self._committed()
        finally:
            if self._holds_lock and not conn.in_transaction:
                self._release()

    async def _commit(self, conn: sqlite3.Connection) -> None:
        """COMMIT (the fsync of synchronous=FULL happens here), inline or on a worker
        thread (``CommitTimer``). Cancelling the awaiting task does not interrupt a
        threaded commit: the connection must not be used again (a rollback, a close)
        while the thread still commits on it."""
        deadline = time.monotonic() + self._busy_seconds
        commit = self._commits.timed_commit
        while True:
            if self._commits.inline:
                try:
                    commit(conn)
                    return
                except sqlite3.OperationalError as error:
                    if not _is_busy(error) or time.monotonic() >= deadline:
                        raise
                await asyncio.sleep(0.005)
                continue
            task = asyncio.ensure_future(asyncio.to_thread(commit, conn))
            cancelled = False
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    cancelled = True
            if cancelled:
                raise asyncio.CancelledError
            error = task.exception()
            if error is None:
                return
            if not (isinstance(error, sqlite3.OperationalError) and _is_busy(error)):
                raise error
            if time.monotonic() >= deadline:
                raise error
            await asyncio.sleep(0.005)

    async def rollback(self) -> None:
        conn = self._conn
        try:
            if conn.in_transaction:
                conn.rollback()
        finally:
            if self._holds_lock:
                self._release()

    async def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.close()
        finally:
            self._connection = None
            if self._holds_lock:
                self._release()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._holds_lock:
            self._release()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        cursor = InlineCursor(self, self._conn.cursor())
        return await cursor.execute(operation, parameters)


def open_sqlite(
    path: str, pragmas: Sequence[str], *more: str, isolation_level: str | None = ""
) -> sqlite3.Connection:
    """A connection to ``path`` usable from any thread (one at a time), with ``pragmas``
    and ``more``, and SQLite's own busy handler off: waits on another process's lock
    happen with ``asyncio.sleep`` (or not at all), never blocking the event loop."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=isolation_level)
    for pragma in (*pragmas, *more, "PRAGMA busy_timeout=0"):
        conn.execute(pragma)
    return conn


CHECKPOINT_EVERY = 100  # commits between two WAL checkpoints


class Checkpointer:
    """Copies the WAL back into the database file on a worker thread every
    ``CHECKPOINT_EVERY`` commits. SQLite's own automatic checkpoint is turned off on our
    connections: it runs inside whichever commit takes the WAL past 1000 pages, and
    with commits inline that stopped the event loop for up to ~100 ms. The checkpoint
    holds the process's write lock, as the automatic one did (writers wait, readers and
    the event loop go on): a checkpoint racing writes never catches up, and the WAL is
    only reused from its start once everything in it was copied. What it cannot copy
    yet (another process's reader still needs it) waits for the next one."""

    def __init__(self, path: str, pragmas: Sequence[str], lock: asyncio.Lock) -> None:
        self._lock = lock
        self._path = path
        self._pragmas = pragmas
        self._since = 0
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None

    def committed(self) -> None:
        self._since += 1
        if self._since >= CHECKPOINT_EVERY and self._task is None:
            self._since = 0
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            async with self._lock:
                await asyncio.to_thread(self._checkpoint)
        except sqlite3.Error as exc:  # a busy or closing database: the next one will do
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._task = None

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = open_sqlite(self._path, self._pragmas)
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        task = self._task
        if task is not None:
            await asyncio.shield(task)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SqliteFile:
    """One database file's in-process coordination, shared by every connection to it
    from this process — the engine's pooled connections and ``statements.Writer``'s:
    one write lock, one commit timer, one checkpointer."""

    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = pragmas
        self.lock = asyncio.Lock()
        self.commits = CommitTimer()
        self.checkpoints = Checkpointer(path, pragmas, self.lock)

    def connect(self) -> InlineConnection:
        # COMMIT may run on a worker thread; it is awaited, so never concurrent with use.
        # Busy waits happen in _retry_busy (async); checkpoints are the Checkpointer's.
        conn = open_sqlite(self.path, self.pragmas, "PRAGMA wal_autocheckpoint=0")
        return InlineConnection(
            conn, self.lock, BUSY_RETRY_SECONDS, self.commits, self.checkpoints.committed
        )

    def creator(self) -> Callable[[], Any]:
        """An ``async_creator`` for ``create_async_engine``."""

        async def connect() -> InlineConnection:
            return self.connect()

        return connect
