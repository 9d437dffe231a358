"""The inline SQLite driver (``db/sqlite_inline.py``) at the ``Database`` level: the
in-process write lock is given back on every way a transaction ends (commit, failure,
rollback, cancellation), writers in one process take turns while reads go on, and a
writer outlasts another process holding SQLite's lock; commits run inline or on a
worker thread by how long recent ones took. (Through a live server:
tests/test_performance_paths.py.)"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from adcp_agent.db import statements
from adcp_agent.db.engine import Database, create_database
from adcp_agent.db.sqlite_inline import CHECKPOINT_EVERY, CommitTimer


@pytest.fixture
async def items_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with db.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        )
        await conn.execute(text("INSERT INTO items (name) VALUES ('first')"))
    yield db
    await db.dispose()


async def _names(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text("SELECT name FROM items ORDER BY id"))).scalars())


async def _insert(db: Database, *names: str) -> None:
    async with db.transaction() as session:
        conn = await session.connection()
        for name in names:
            await conn.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": name})


async def _insert_elsewhere(db: Database, name: str) -> None:
    """Insert on another connection while the last one used is checked out (idle), as
    a server's next request would: had that connection kept the process's write lock,
    this write would wait for it and fail with 'database is locked'."""
    async with db.engine.connect():  # checked out, idle
        await _insert(db, name)


async def test_a_failed_first_write_gives_the_lock_back(items_db: Database) -> None:
    with pytest.raises(IntegrityError):
        await _insert(items_db, "first")  # the unique name is taken: fails at once
    await _insert_elsewhere(items_db, "second")
    assert await _names(items_db) == ["first", "second"]


async def test_a_failed_later_write_undoes_the_transaction_and_gives_the_lock_back(
    items_db: Database,
) -> None:
    with pytest.raises(IntegrityError):
        await _insert(items_db, "kept?", "first")  # the second statement fails
    await _insert_elsewhere(items_db, "second")
    assert await _names(items_db) == ["first", "second"]  # "kept?" went with the rollback


async def test_a_rolled_back_transaction_leaves_nothing_and_frees_writers(
    items_db: Database,
) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with items_db.transaction() as session:
            conn = await session.connection()
            await conn.execute(text("INSERT INTO items (name) VALUES ('abandoned')"))
            raise Abandon
    # A connection closed with its transaction open rolls back as well.
    async with items_db.engine.connect() as conn:
        await conn.execute(text("UPDATE items SET name = 'renamed' WHERE name = 'first'"))
    await _insert_elsewhere(items_db, "second")
    assert await _names(items_db) == ["first", "second"]


async def test_a_cancelled_writer_gives_the_lock_back(items_db: Database) -> None:
    """A request cancelled mid-transaction (its client went away) must not keep the
    process's write lock."""
    holding = asyncio.Event()

    async def writer() -> None:
        async with items_db.transaction() as session:
            conn = await session.connection()
            await conn.execute(text("INSERT INTO items (name) VALUES ('cancelled')"))
            holding.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _insert_elsewhere(items_db, "second")
    assert await _names(items_db) == ["first", "second"]


async def test_writers_in_one_process_take_turns(items_db: Database) -> None:
    """A second transaction that writes while the first holds the lock waits for it
    (no 'database is locked'), and both commit."""
    first_wrote, let_first_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with items_db.transaction() as session:
            conn = await session.connection()
            await conn.execute(text("INSERT INTO items (name) VALUES ('one')"))
            first_wrote.set()
            await let_first_commit.wait()
            await conn.execute(text("INSERT INTO items (name) VALUES ('two')"))

    one = asyncio.create_task(first())
    await first_wrote.wait()
    other = asyncio.create_task(_insert(items_db, "three"))
    # Reads go on while both writers are in flight (WAL snapshot reads).
    assert await _names(items_db) == ["first"]
    assert not other.done()
    let_first_commit.set()
    await asyncio.gather(one, other)
    assert await _names(items_db) == ["first", "one", "two", "three"]


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_a_writer_outlasts_another_process_holding_the_lock(
    items_db: Database, tmp_path: Path, ending: str
) -> None:
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO items (name) VALUES ('theirs')")
        mine = asyncio.create_task(_insert(items_db, "mine"))
        assert await _names(items_db) == ["first"]  # reads answer meanwhile
        await asyncio.sleep(0.2)
        assert not mine.done()
    finally:
        holder.execute(ending.upper())
        holder.close()
    await mine
    expected = ["first", "theirs", "mine"] if ending == "commit" else ["first", "mine"]
    assert await _names(items_db) == expected


async def test_commits_run_inline_while_fast_and_on_a_thread_once_slow(
    items_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with items_db.engine.connect() as conn:
        inline = (await conn.get_raw_connection()).driver_connection
    timer: CommitTimer = inline._commits  # one per engine: every pooled connection's
    threads: list[int] = []
    real = CommitTimer.timed_commit

    def watched(self: CommitTimer, conn: sqlite3.Connection) -> None:
        threads.append(threading.get_ident())
        real(self, conn)

    monkeypatch.setattr(CommitTimer, "timed_commit", watched)
    timer.average = 0.0
    await _insert(items_db, "fast disk")
    timer.average = 1.0  # as after commits that took a second
    await _insert(items_db, "slow disk")
    assert threads[0] == threading.get_ident()  # the event loop's own thread
    assert threads[1] != threading.get_ident()  # a worker thread
    # Every commit is timed wherever it ran: faster ones bring the average down (and
    # the commits back inline once it is under INLINE_COMMIT_SECONDS).
    assert 0 < timer.average < 1.0
    assert await _names(items_db) == ["first", "fast disk", "slow disk"]


async def test_a_write_transaction_waits_for_another_process_and_survives_cancellation(
    tmp_path: Path,
) -> None:
    """``Database.write`` on SQLite (statements.Writer): BEGIN IMMEDIATE is retried while
    another process holds the lock; a writer cancelled mid-transaction leaves nothing
    and hands the lock on."""
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    insert = text("INSERT INTO items (name) VALUES (:n)")
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    try:
        assert db.writer is not None
        holder = sqlite3.connect(tmp_path / "w.db", isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO items (name) VALUES ('theirs')")

        async def write(name: str, pause: float = 0.0) -> None:
            async with db.write() as tx:
                await statements.execute(tx, insert, {"n": name})
                await asyncio.sleep(pause)

        mine = asyncio.create_task(write("mine"))
        await asyncio.sleep(0.2)
        assert not mine.done()  # waiting for the other process
        holder.execute("COMMIT")
        holder.close()
        await mine
        cancelled = asyncio.create_task(write("cancelled", pause=10))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(write("after"), timeout=5)  # the lock was handed on
        assert await _names(db) == ["theirs", "mine", "after"]
    finally:
        await db.dispose()


async def test_the_wal_is_checkpointed_off_the_commits(tmp_path: Path) -> None:
    """Automatic checkpoints are off on our connections (they ran inside a commit, on the
    event loop's thread when commits run inline); the Checkpointer copies the WAL back
    every CHECKPOINT_EVERY commits on a worker thread, so it does not grow without bound."""
    path = tmp_path / "c.db"
    db = create_database(f"sqlite+aiosqlite:///{path}")
    insert = text("INSERT INTO blobs (data) VALUES (:d)")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)"))
            mode = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert mode == 0
        for n in range(3 * CHECKPOINT_EVERY):  # ~12 MB through the WAL
            async with db.write() as tx:
                await statements.execute(tx, insert, {"d": bytes([n % 256]) * 40_000})
            await asyncio.sleep(0)  # let a finished checkpoint's task end
        assert db.sqlite_file is not None
        await db.sqlite_file.checkpoints.close()  # the last one, if still running
        wal = path.with_name("c.db-wal").stat().st_size
        assert wal < 8_000_000, wal  # without checkpoints: ~12 MB
    finally:
        await db.dispose()


async def test_a_writer_gives_up_when_the_lock_is_held_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for the process's write lock is bounded by the busy timeout: past it the
    writer fails with SQLite's own "database is locked" instead of queueing forever."""
    from adcp_agent.db import sqlite_inline

    monkeypatch.setattr(sqlite_inline, "BUSY_RETRY_SECONDS", 0.2)
    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
    insert = text("INSERT INTO items (name) VALUES (:n)")
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"))
    try:
        async with db.transaction() as session:  # holds the lock from its first write
            await (await session.connection()).execute(insert, {"n": "holder"})

            async def waiter() -> None:
                async with db.write() as tx:
                    await statements.execute(tx, insert, {"n": "waiter"})

            with pytest.raises(OperationalError, match="database is locked"):
                await asyncio.wait_for(waiter(), timeout=5)  # not queued for good
        async with db.write() as tx:  # free again
            await statements.execute(tx, insert, {"n": "after"})
        assert await _names(db) == ["holder", "after"]
    finally:
        await db.dispose()
