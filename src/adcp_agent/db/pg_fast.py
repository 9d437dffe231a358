"""Prebuilt statements on PostgreSQL straight on asyncpg, without SQLAlchemy's
execution machinery.

A prebuilt SELECT through the async engine cost ~310 µs of this process's CPU per
statement (pool checkout, greenlet switches, an execution context, the adapted cursor,
result metadata, the check-in), the same statement on an asyncpg connection ~80 µs —
and every tool call makes at least one (the token lookup), a booking twenty.

``PgFast`` keeps a few asyncpg connections of its own, with the JSON codecs
SQLAlchemy's dialect installs on its connections, and runs statements built once (``Plans``: the
SQL SQLAlchemy compiles for asyncpg, its bind and result processors, so values come
back exactly as through the engine): ``read`` outside any transaction (each statement
reads what is committed), ``transaction`` for ``Database.write`` (BEGIN ... COMMIT on
one connection, the statements through ``db.statements.Writes``). asyncpg's errors
are raised as the engine raises them (``IntegrityError`` for a duplicate key).

asyncpg is imported when the first PostgreSQL database is opened: a SQLite server
never loads it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from adcp_agent.db.fast_reads import Plans, _Plan
from adcp_agent.db.statements import Writes

if TYPE_CHECKING:
    import asyncpg

POOL_SIZE = 4  # connections of its own, next to the engine's pool
# Keyword arguments of SQLAlchemy's asyncpg adapter that asyncpg.connect does not take.
_ADAPTER_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")


def connect_options(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg.connect's arguments for the engine's URL, as SQLAlchemy's adapter reads
    it. ``?prepared_statement_cache_size=0`` (behind a pooler that cannot keep prepared
    statements) turns asyncpg's statement cache off here too."""
    _, options = engine.dialect.create_connect_args(engine.url)
    if "prepared_statement_cache_size" in options:
        options["statement_cache_size"] = int(options["prepared_statement_cache_size"])
    for key in _ADAPTER_ONLY:
        options.pop(key, None)
    return options  # type: ignore[no-any-return]


class _Shim:
    """What SQLAlchemy's codec setup expects: an adapted connection's ``_connection``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._connection = conn


class _Connection:
    """An asyncpg connection as ``Writes`` runs statements on it."""

    sends_together = True  # (statements.combined)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def run(self, sql: str, sets: list[list[Any]], /) -> int:
        if len(sets) == 1:
            status = await self._conn.execute(sql, *sets[0])  # "INSERT 0 1", "UPDATE 3"
            return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else -1
        await self._conn.executemany(sql, sets)
        return -1  # asyncpg does not count the rows of executemany

    async def fetch(self, sql: str, args: list[Any], /) -> Sequence[Any]:
        return await self._conn.fetch(sql, *args)  # type: ignore[no-any-return]


class PgFast(Plans):
    def __init__(self, engine: AsyncEngine, size: int = POOL_SIZE) -> None:
        import asyncpg

        super().__init__(engine.dialect)
        self._engine = engine
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._open_count = 0
        self._waiters: deque[asyncio.Future[asyncpg.Connection]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0  # bumped by close(): older connections are dropped
        self._born: dict[asyncpg.Connection, int] = {}
        self.errors: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)

    async def _open(self) -> asyncpg.Connection:
        import asyncpg

        dialect = self._engine.dialect
        conn = await asyncpg.connect(**connect_options(self._engine))
        try:
            await dialect.setup_asyncpg_json_codec(_Shim(conn))  # type: ignore[attr-defined]
            await dialect.setup_asyncpg_jsonb_codec(_Shim(conn))  # type: ignore[attr-defined]
        except BaseException:
            conn.terminate()
            raise
        self._born[conn] = self._generation
        return conn

    async def _acquire(self) -> asyncpg.Connection:
        """An idle connection, a new one while fewer than ``size`` are open, else the
        next one given back. (asyncpg's own pool cost ~85 µs a use, resetting session
        state nothing here sets.)"""
        if self._idle:
            return self._idle.pop()
        if self._open_count < self._size:
            self._open_count += 1
            try:
                return await self._open()
            except BaseException:
                self._open_count -= 1
                raise
        waiter: asyncio.Future[asyncpg.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over as we were cancelled
            raise

    def _release(self, conn: asyncpg.Connection) -> None:
        if (
            conn.is_closed()
            or conn.is_in_transaction()  # left mid-transaction (cancelled)
            or self._born.get(conn) != self._generation  # opened before close()
        ):
            conn.terminate()
            self._born.pop(conn, None)
            self._open_count -= 1
            if self._waiters:  # a waiter may open a new one: wake it to try
                self._wake_to_open(self._waiters.popleft())
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _wake_to_open(self, waiter: asyncio.Future[asyncpg.Connection]) -> None:
        async def open_for() -> None:
            self._open_count += 1
            try:
                conn = await self._open()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                self._open_count -= 1
                if not waiter.done():
                    waiter.set_exception(exc)
                return
            if waiter.done():
                self._release(conn)
            else:
                waiter.set_result(conn)

        if not waiter.done():
            self._tasks.add(task := asyncio.get_running_loop().create_task(open_for()))
            task.add_done_callback(self._tasks.discard)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()
            self._born.pop(conn, None)
        self._open_count -= len(idle)

    def wrapped(self, sql: str, args: Any, error: Exception) -> DBAPIError:
        """The exception the engine would have raised for asyncpg's ``error``."""
        dbapi = self._engine.dialect.loaded_dbapi
        translate = dbapi._asyncpg_error_translate  # noqa: SLF001 - SQLAlchemy's own map
        for kind in type(error).__mro__:
            if kind in translate:
                error = translate[kind](error.args[0] if error.args else str(error), error)
                break
        return DBAPIError.instance(sql, args, error, dbapi.Error)

    async def read(self, plan: _Plan, params: dict[str, Any]) -> list[Any]:
        """``plan``'s rows, as committed now (no transaction)."""
        args = self.args(plan, params)
        conn, raw = await self._first(plan.sql, args, fetch=True)
        self._release(conn)
        return self.rows(plan, raw)

    async def _first(
        self, sql: str, args: Sequence[Any], *, fetch: bool
    ) -> tuple[asyncpg.Connection, Any]:
        """A connection and what its first statement returned (the caller gives the
        connection back). A connection the server closed while it sat idle (a restart,
        an idle timeout) fails its first statement, and nothing has happened yet: the
        statement is retried once on a new connection (the other idle ones likely went
        with it)."""
        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                result = await (conn.fetch(sql, *args) if fetch else conn.execute(sql, *args))
                return conn, result
            except self.errors as exc:
                self._release(conn)
                if attempt == 1 and conn.is_closed():
                    self._drop_idle()
                    continue
                raise self.wrapped(sql, args, exc) from exc
            except BaseException:
                self._release(conn)
                raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Writes]:
        """A transaction for ``db.statements``; committed on success, rolled back on
        any error. ``durable=False``: ``synchronous_commit`` off for it."""
        begin = "BEGIN" if durable else "BEGIN; SET LOCAL synchronous_commit TO OFF"
        conn, _ = await self._first(begin, (), fetch=False)
        try:
            yield Writes(self, _Connection(conn), self.errors, self.wrapped)
            try:
                await conn.execute("COMMIT")
            except self.errors as exc:
                raise self.wrapped("COMMIT", (), exc) from exc
        except BaseException:
            try:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - mid-statement (cancelled): drop it
                conn.terminate()  # _release drops a closed connection
            raise
        finally:
            self._release(conn)

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when given back. (Used
        again afterwards, it opens new ones.)"""
        self._generation += 1
        idle, self._idle = self._idle, []
        self._open_count -= len(idle)
        for conn in idle:
            self._born.pop(conn, None)
            try:
                await conn.close(timeout=2)
            except Exception:  # noqa: BLE001 - closing anyway
                conn.terminate()
