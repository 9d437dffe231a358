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
    """A transaction's driver connection as ``Writes`` uses it."""

    async def run(self, sql: str, sets: list[list[Any]], /) -> int: ...

    async def fetch(self, sql: str, args: list[Any], /) -> Sequence[Any]: ...


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

    def _plan(self, statement: Executable) -> Any:
        plan = self._plans.plan(statement)
        if plan is None:
            raise TypeError("a write transaction runs statements built once, without lists")
        return plan

    async def execute(self, statement: Executable, sets: list[Params]) -> int:
        plan = self._plan(statement)
        args = [self._plans.args(plan, p) for p in sets]
        try:
            return await self._conn.run(plan.sql, args)
        except self._errors as exc:
            raise self._wrap(plan.sql, args, exc) from exc

    async def fetch(self, statement: Executable, params: Params) -> list[Any]:
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


async def execute(session: Tx, statement: Executable, params: Params | Sequence[Params]) -> int:
    """Run an INSERT, UPDATE or DELETE built once (one parameter set, or several for
    one statement each) in ``session``'s transaction; the number of rows it changed
    (with several sets, -1 where the driver does not count them: asyncpg)."""
    sets = [params] if isinstance(params, dict) else list(params)
    if not sets:
        return 0  # (an empty list is no statement, not one without parameters)
    fast = session if isinstance(session, Writes) else await _fast(session, statement)
    if fast is not None:
        return await fast.execute(statement, sets)
    conn = await session.connection()  # type: ignore[union-attr]
    result = await conn.execute(statement, sets[0] if isinstance(params, dict) else sets)
    return result.rowcount


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
