"""The async engine and session factory.

SQLite is tuned for "acknowledged means durable": WAL journal with ``synchronous=FULL``
(every commit is fsynced to the WAL before it returns, so a committed buy survives
``kill -9`` and power loss), foreign keys on, and a busy timeout so concurrent writers
wait instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Select, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.orm.session import Session

from adcp_agent.db.fast_reads import FastReads
from adcp_agent.db.pg_fast import PgFast
from adcp_agent.db.sqlite_inline import SqliteFile
from adcp_agent.db.statements import PLANS, READ_ONLY, ReadOnlyError, Tx, Writer, build

M = TypeVar("M", bound=SQLModel)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # 1 MiB of page cache per pooled connection (SQLite's default is 2 MiB): the pool
    # keeps up to 20 connections, and the OS caches the file for all of them anyway.
    "PRAGMA cache_size=-1024",
)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class _ReadingSession(Session):
    """A session that refuses to write (``Database.reading``)."""


@event.listens_for(_ReadingSession, "do_orm_execute")
def _refuse_writes(execute_state: Any) -> None:
    if execute_state.is_insert or execute_state.is_update or execute_state.is_delete:
        raise ReadOnlyError(f"a reading session cannot run {execute_state.statement}")


@event.listens_for(_ReadingSession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise ReadOnlyError("a reading session cannot write objects")


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # In-process caches of data read from this database, by owner (e.g. "catalog").
    # Each owner keeps its entries valid against a stamp stored in the database.
    cache: dict[str, Any] = field(default_factory=dict)
    fast: FastReads | None = None  # SQLite files: see db.fast_reads
    pg: PgFast | None = None  # PostgreSQL: see db.pg_fast
    writer: Writer | None = None  # SQLite files: see db.statements
    sqlite_file: SqliteFile | None = None  # SQLite files: see db.sqlite_inline
    # The engine for ``read``: autocommit on PostgreSQL, where a transaction around one
    # SELECT cost two more round trips (BEGIN, and ROLLBACK when the pool takes the
    # connection back); a single statement reads committed data either way.
    reads: AsyncEngine = field(init=False)
    # Sessions for ``reading``: on ``reads``, refusing writes.
    reading_sessions: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.reads = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.reading_sessions = async_sessionmaker(
            self.reads,
            class_=AsyncSession,
            sync_session_class=_ReadingSession,
            expire_on_commit=False,
            info={**self.sessions.kw.get("info", {}), READ_ONLY: True},
        )

    async def read(self, statement: Select[Any], params: dict[str, Any]) -> Sequence[Any]:
        """The rows of a read-only statement built once (columns as attributes), as
        committed now: through ``FastReads`` (SQLite) or ``PgFast`` (PostgreSQL) where
        they can serve, else over a pooled connection. Not for reads that must see a
        transaction's own uncommitted writes."""
        fast = self.fast
        if fast is not None:
            plan = fast.plan(statement)
            if plan is not None:
                try:
                    return fast.run(plan, params)
                except sqlite3.Error:
                    pass  # busy, or anything unusual: the engine retries or reports it
        elif self.pg is not None:
            plan = self.pg.plan(statement)
            if plan is not None:
                return await self.pg.read(plan, params)
        async with self.reads.connect() as conn:
            return (await conn.execute(statement, params)).all()

    async def read_models(
        self, model: type[M], statement: Select[Any], params: dict[str, Any]
    ) -> list[M]:
        """``read`` for a statement selecting ``model``'s table: the rows as detached
        instances of it (``statements.build``: as the ORM builds loaded rows)."""
        return [build(model, **row._asdict()) for row in await self.read(statement, params)]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: a write (an ORM object flushed, an INSERT, UPDATE
        or DELETE statement; textual SQL is not inspected) raises ``ReadOnlyError``.
        On PostgreSQL it runs without a transaction (each statement reads what is
        committed when it runs, as it would in a READ COMMITTED transaction), which
        saves the BEGIN and the ROLLBACK — two round trips; on SQLite it is a session
        as ``session`` gives (its reads share one snapshot)."""
        async with self.reading_sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self, *, durable: bool = True) -> AsyncIterator[Tx]:
        """A transaction for work that writes and reads only through ``db.statements``
        (no ORM): committed on success, rolled back on any error. It runs without a
        session: on SQLite on the writer's connection (``statements.Writer``), on
        PostgreSQL on an asyncpg connection (``pg_fast.PgFast``).

        ``durable=False`` only for rows whose loss in a power failure is harmless (a
        claim nobody was told about): the commit does not wait for the disk (SQLite:
        no fsync, the WAL still survives the process being killed; PostgreSQL:
        ``synchronous_commit`` off for this transaction). A later durable commit makes
        it durable too."""
        if self.writer is not None:
            async with self.writer.transaction(durable=durable) as tx:
                yield tx
        elif self.pg is not None:
            async with self.pg.transaction(durable=durable) as tx:
                yield tx
        else:  # an in-memory SQLite database (tests of migrations, the CLI's checks)
            async with self.transaction() as session:
                yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            return False

    async def dispose(self) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self.fast is not None:
            self.fast.close()
        if self.writer is not None:
            self.writer.close()
        if self.sqlite_file is not None:
            await self.sqlite_file.checkpoints.close()
        await self.engine.dispose()


# A pooled server connection unused for this long is pinged before it is handed out.
IDLE_PING_SECONDS = 30.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it sat idle: one that served a
    request within the last ``IDLE_PING_SECONDS`` is handed out as it is. Pinging on
    every checkout (``pool_pre_ping``) cost a round trip per connection use — two or
    three per tool call. A dead connection found by the ping is replaced (the pool
    retries the checkout); one that died while in use fails its statement, and
    SQLAlchemy then retires every connection opened before that failure."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("idle connection failed its ping") from exc


def create_database(url: str, *, echo: bool = False) -> Database:
    kwargs: dict[str, Any] = {"echo": echo}
    sqlite_file: SqliteFile | None = None
    path = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Statements run on the event loop thread, not one aiosqlite thread hop each
        # (see sqlite_inline); the PRAGMAs are applied by the creator.
        sqlite_file = SqliteFile(path, SQLITE_PRAGMAS)
        kwargs["async_creator"] = sqlite_file.creator()
        # Keep enough connections for a burst of concurrent requests: an overflow
        # connection is closed on return and its replacement pays the PRAGMAs again.
        kwargs.update(pool_size=20, max_overflow=40)
    elif not url.startswith("sqlite"):
        kwargs.update(pool_size=10, max_overflow=20)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name != "sqlite":
        _ping_when_idle(engine)
    if engine.dialect.name == "sqlite" and "async_creator" not in kwargs:
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    fast = writer = pg = None
    if sqlite_file is not None:
        fast = FastReads(path, SQLITE_PRAGMAS, engine.dialect)
        writer = Writer(sqlite_file, fast)
    elif engine.dialect.driver == "asyncpg":
        pg = PgFast(engine)
    # Sessions carry the plans, for statements run in their transactions (db.statements).
    info = {PLANS: fast} if fast is not None else {}
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, info=info)
    return Database(
        engine=engine,
        sessions=sessions,
        fast=fast,
        pg=pg,
        writer=writer,
        sqlite_file=sqlite_file,
    )
