"""Prebuilt statements inside a session's transaction, without the ORM's unit of work.

A row written through the ORM (an instance added, flushed at commit) or a Core
statement through ``session.exec`` costs ~200–300 µs on SQLite, of which SQLite's own
work is ~10 µs: the unit of work, an execution context, a cursor wrapper, result
metadata. ``execute`` and ``fetch`` run a statement built once (a module constant) on
the transaction's own connection: on SQLite through the plan ``FastReads`` compiled for
it (the same SQL text, bind and result processors as the engine's) straight on the
sqlite3 connection, under the same write lock and busy retries as every other
statement (``sqlite_inline``); elsewhere through the session as usual.

Pending ORM changes are flushed first, as autoflush would, so statements and ORM
writes in one transaction land in the order they were made.

Work that writes only through these statements can skip the session altogether:
``Database.write()`` gives a ``Writes`` transaction on a driver connection of its own —
on SQLite the ``Writer``'s, on PostgreSQL one of ``pg_fast.PgFast``'s (asyncpg, the
same statements compiled for it) — and a session transaction only on an in-memory
SQLite database; ``execute`` and ``fetch`` take either (``Tx``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Protocol, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy import Insert, Table, bindparam
from sqlalchemy import insert as core_insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql import Executable
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.fast_reads import FastReads, Plans
from adcp_agent.db.sqlite_inline import InlineConnection, SqliteFile

PLANS = "fast_reads"  # the session's info key holding the engine's FastReads, if any
READ_ONLY = "read_only"  # a session's info key: ``Database.reading`` made it


class ReadOnlyError(RuntimeError):
    """A write in a session that ``Database.reading`` gave (a programming error)."""


Params = dict[str, Any]
M = TypeVar("M", bound=SQLModel)


@cache
def _columns(model: type[SQLModel]) -> list[Any]:
    """The mapped columns (not those only the database writes, e.g. trigger-kept
    copies) but a database-assigned key."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    auto = table.autoincrement_column
    mapped = [prop.columns[0] for prop in sa_inspect(model).column_attrs]
    return [c for c in mapped if c is not auto]


@cache
def model_columns(model: type[SQLModel]) -> tuple[Any, ...]:
    """The table columns of ``model``'s fields, to SELECT rows ``build`` can make into
    models (a table may hold more: columns its triggers keep, which no field maps)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return tuple(table.c[name] for name in model.model_fields)


@cache
def _fields(model: type[SQLModel]) -> tuple[tuple[str, Any, Callable[[], Any] | None], ...]:
    return tuple(
        (name, field.default, field.default_factory)  # type: ignore[misc]
        for name, field in model.model_fields.items()
    )


def build(model: type[M], **values: Any) -> M:
    """An instance of table model ``model`` built the way the ORM builds the rows it
    loads, without pydantic's ``__init__`` (table models do not validate; it cost ~30 µs
    an object, ~2 µs this way): ``values`` plus the model's defaults for the rest."""
    data: dict[str, Any] = {}
    for name, default, factory in _fields(model):
        if name in values:
            data[name] = values[name]
        elif factory is not None:
            data[name] = factory()
        elif default is not PydanticUndefined:
            data[name] = default
        else:
            raise TypeError(f"{model.__name__} needs {name}")
    if unknown := values.keys() - data.keys():
        raise TypeError(f"{model.__name__} has no {sorted(unknown)}")
    instance = manager_of_class(model).new_instance()
    instance.__dict__.update(data)
    return instance  # type: ignore[no-any-return]


@cache
def insert_of(model: type[SQLModel]) -> Insert:
    """An INSERT of ``model``'s every column (but a database-assigned key), each bound by
    its own name (one statement per model): run it with ``values_of`` an instance."""
    table = model.__table__  # type: ignore[attr-defined]
    values = {c.key: bindparam(c.key, type_=c.type) for c in _columns(model)}
    return core_insert(table).values(values)


@cache
def _keys(model: type[SQLModel]) -> tuple[str, ...]:
    return tuple(c.key for c in _columns(model))


def values_of(row: SQLModel) -> Params:
    """The parameters of ``insert_of(type(row))`` for ``row``: read from the instance's
    ``__dict__`` (the ORM's attribute descriptors cost ~0.4 µs a read, ~0.1 ms a
    booking), through the descriptor only for what is not loaded there."""
    data = row.__dict__
    return {k: data[k] if k in data else getattr(row, k) for k in _keys(type(row))}


def _wrapped(sql: str, args: Any, error: Exception) -> DBAPIError:
    """The exception the engine would have raised (IntegrityError for a duplicate key,
    OperationalError for a lock), so callers catch the same types on every path."""
    return DBAPIError.instance(sql, args, error, sqlite3.Error)


class Connection(Protocol):
    """A transaction's driver connection as ``Writes`` uses it. One whose
    ``sends_together`` is true takes several statements as one (``Writes.together``)."""

    sends_together: bool

    async def run(self, sql: str, sets: list[list[Any]], /) -> int: ...

    async def fetch(self, sql: str, args: list[Any], /) -> Sequence[Any]: ...


class RowCountError(RuntimeError):
    """A statement run with ``expect`` changed another number of rows."""


_PLACEHOLDER = re.compile(r"\$(\d+)")
_WRITE = ("INSERT ", "UPDATE ", "DELETE ")
MAX_PARAMETERS = 32_000  # PostgreSQL's limit is 32,767 a statement


def _target(sql: str) -> str:
    """The table a write changes: INSERT INTO t, UPDATE t, DELETE FROM t."""
    words = sql.split(None, 3)
    return words[2] if words[0] in ("INSERT", "DELETE") else words[1]


def _combinable(sql: str, args: list[Any]) -> bool:
    """A write that can be a part of one statement (a CTE of it): no literal text, in
    which a "$" need not be a parameter, and its parameters numbered 1 to n."""
    if not sql.startswith(_WRITE) or "'" in sql:
        return False
    numbers = {int(n) for n in _PLACEHOLDER.findall(sql)}
    return numbers == set(range(1, len(args) + 1))


def combined(queued: list[tuple[str, list[Any], int | None]]) -> tuple[str, list[Any]]:
    """One statement for ``queued`` writes (SQL, parameters, expected row count): each a
    data-modifying CTE, their placeholders renumbered, and a SELECT of the row counts
    (those without an expectation count 0). PostgreSQL runs every CTE once, to
    completion, all on the same snapshot: none sees another's rows, and foreign keys
    are checked when the statement ends."""
    parts, counts, flat = [], [], []
    for i, (sql, args, expect) in enumerate(queued):
        offset = len(flat)
        text = _PLACEHOLDER.sub(lambda m, o=offset: f"${int(m[1]) + o}", sql)  # type: ignore[misc]
        if expect is None:
            parts.append(f"s{i} AS ({text})")
            counts.append("0")
        else:
            returning = "" if " RETURNING " in text else " RETURNING 1"
            parts.append(f"s{i} AS ({text}{returning})")
            counts.append(f"(SELECT count(*) FROM s{i})")
        flat.extend(args)
    return f"WITH {', '.join(parts)} SELECT {', '.join(counts)}", flat


Wrap = Callable[[str, Any, Exception], DBAPIError]


class Writes:
    """Prebuilt statements run straight on a transaction's driver connection: a
    ``Database.write`` transaction (no session, no ORM; on SQLite the writer's
    connection holds the process's write lock from begin to end, on PostgreSQL an
    asyncpg connection of ``PgFast``'s), or a SQLite session's transaction
    (``_fast``). The driver's exceptions (``errors``) are raised as the engine would
    have raised them (``wrap``)."""

    def __init__(
        self,
        plans: Plans,
        conn: Connection,
        errors: tuple[type[Exception], ...] = (sqlite3.Error,),
        wrap: Wrap = _wrapped,
    ) -> None:
        self._plans = plans
        self._conn = conn
        self._errors = errors
        self._wrap = wrap
        # Writes waiting to be sent as one statement (``together``): SQL, parameters,
        # the row count expected of it.
        self._queued: list[tuple[str, list[Any], int | None]] | None = None

    def _plan(self, statement: Executable) -> Any:
        plan = self._plans.plan(statement)
        if plan is None:
            raise TypeError("a write transaction runs statements built once, without lists")
        return plan

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """Writes made inside are sent to the database as one statement where the
        driver can (PostgreSQL: one round trip instead of one each), when the block
        ends or before the next read; elsewhere each runs at once, as outside. A
        write's errors (a duplicate key) then surface there, and ``execute`` answers
        -1 for its row count (use ``expect`` to have it checked). Only for writes that
        do not depend on one another's rows but through foreign keys: each sees the
        database as it was before the first of them (so does a trigger they fire).
        A second write to a table, or one with several parameter sets, sends those
        before it first (keys drawn from a sequence keep the order of the writes)."""
        if self._queued is not None or not self._conn.sends_together:
            yield
            return
        self._queued = []
        try:
            yield
            await self._send()
        finally:
            self._queued = None

    async def _send(self) -> None:
        """Send the queued writes, as one statement."""
        queued = self._queued
        if not queued:
            return
        self._queued = []
        sql, args = combined(queued)
        try:
            [counts] = await self._conn.fetch(sql, args)
        except self._errors as exc:
            raise self._wrap(sql, args, exc) from exc
        for (one, _, expect), count in zip(queued, counts, strict=True):
            if expect is not None and count != expect:
                raise RowCountError(f"{count} rows changed, {expect} expected: {one}")

    async def execute(
        self, statement: Executable, sets: list[Params], expect: int | None = None
    ) -> int:
        plan = self._plan(statement)
        args = [self._plans.args(plan, p) for p in sets]
        if self._queued is not None:
            if len(args) == 1 and _combinable(plan.sql, args[0]):
                queued = self._queued
                table = _target(plan.sql)
                if (
                    any(_target(sql) == table for sql, _, _ in queued)
                    or sum(len(a) for _, a, _ in queued) + len(args[0]) > MAX_PARAMETERS
                ):
                    # One write a table a statement: the parts of one statement run in
                    # no set order, and keys drawn from a sequence would follow it.
                    await self._send()
                self._queued.append((plan.sql, args[0], expect))
                return -1
            await self._send()  # in order, before this one (several sets: executemany)
        try:
            count = await self._conn.run(plan.sql, args)
        except self._errors as exc:
            raise self._wrap(plan.sql, args, exc) from exc
        if expect is not None and count != expect:
            raise RowCountError(f"{count} rows changed, {expect} expected: {plan.sql}")
        return count

    async def fetch(self, statement: Executable, params: Params) -> list[Any]:
        if self._queued:
            await self._send()  # a read sees the writes made before it
        plan = self._plan(statement)
        args = self._plans.args(plan, params)
        try:
            return self._plans.rows(plan, await self._conn.fetch(plan.sql, args))
        except self._errors as exc:
            raise self._wrap(plan.sql, args, exc) from exc


Tx = AsyncSession | Writes  # what statements run in


class Writer:
    """Write transactions on a SQLite connection of the writer's own, begun with
    ``BEGIN IMMEDIATE`` under the process's write lock (shared with the engine's
    connections): one at a time, so one connection serves them all. A transaction
    through a session costs ~0.3 ms of CPU more (the session, its transaction states,
    the pool checkout and reset)."""

    def __init__(self, file: SqliteFile, plans: FastReads) -> None:
        self._file = file
        self._plans = plans
        self._inline: InlineConnection | None = None

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Writes]:
        if self._inline is None:
            self._inline = self._file.connect()
        inline = self._inline
        try:
            await inline.begin_immediate(durable=durable)
        except sqlite3.Error as exc:  # the lock stayed taken past the busy timeout
            raise _wrapped("BEGIN IMMEDIATE", (), exc) from exc
        try:
            yield Writes(self._plans, inline)
            try:
                await inline.commit()
            except sqlite3.Error as exc:
                raise _wrapped("COMMIT", (), exc) from exc
        except BaseException:
            await inline.rollback()  # a failed body or commit; gives the lock back
            raise

    def close(self) -> None:
        if self._inline is not None:
            self._inline.stop()
            self._inline = None


async def _fast(session: AsyncSession, statement: Executable) -> Writes | None:
    """After flushing the session's pending ORM changes (as autoflush would): its
    transaction's sqlite3 connection as ``Writes``, if ``statement`` can run there."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    plans: FastReads | None = session.info.get(PLANS)
    if plans is None or plans.plan(statement) is None:
        return None
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    return Writes(plans, driver) if isinstance(driver, InlineConnection) else None


async def execute(
    session: Tx,
    statement: Executable,
    params: Params | Sequence[Params],
    *,
    expect: int | None = None,
) -> int:
    """Run an INSERT, UPDATE or DELETE built once (one parameter set, or several for
    one statement each) in ``session``'s transaction; the number of rows it changed
    (-1 where the driver does not count them: asyncpg with several sets, a write in a
    ``together`` block). ``expect``: raise ``RowCountError`` unless it changes that
    many rows (checked wherever the statement is sent)."""
    sets = [params] if isinstance(params, dict) else list(params)
    if not sets:
        return 0  # (an empty list is no statement, not one without parameters)
    if not isinstance(session, Writes) and session.info.get(READ_ONLY):
        raise ReadOnlyError(f"a reading session cannot run {statement}")
    fast = session if isinstance(session, Writes) else await _fast(session, statement)
    if fast is not None:
        return await fast.execute(statement, sets, expect)
    conn = await session.connection()  # type: ignore[union-attr]
    result = await conn.execute(statement, sets[0] if isinstance(params, dict) else sets)
    if expect is not None and result.rowcount != expect:
        raise RowCountError(f"{result.rowcount} rows changed, {expect} expected: {statement}")
    return result.rowcount


@asynccontextmanager
async def together(session: Tx) -> AsyncIterator[None]:
    """``Writes.together`` for a ``Database.write`` transaction; a session's statements
    run one by one as usual."""
    if isinstance(session, Writes):
        async with session.together():
            yield
    else:
        yield


async def insert(session: Tx, *rows: SQLModel) -> None:
    """INSERT ``rows`` (instances of one model, e.g. from ``build``) in ``session``'s
    transaction."""
    if rows:
        values = [values_of(row) for row in rows]
        await execute(session, insert_of(type(rows[0])), values[0] if len(rows) == 1 else values)


async def fetch(session: Tx, statement: Executable, params: Params) -> list[Any]:
    """The rows of a SELECT built once, as ``session``'s transaction sees them (its own
    writes included); columns as attributes."""
    fast = session if isinstance(session, Writes) else await _fast(session, statement)
    if fast is not None:
        return await fast.fetch(statement, params)
    conn = await session.connection()  # type: ignore[union-attr]
    return list((await conn.execute(statement, params)).all())
