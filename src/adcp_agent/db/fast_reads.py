"""Read-only statements on SQLite without SQLAlchemy's execution machinery.

A prebuilt SELECT run through the async engine on a connection of its own costs
~140 µs on SQLite, of which the database's own work is ~10 µs: the pool checkout,
greenlet switches, an execution context, a cursor wrapper, result metadata and the
reset on check-in. The statements every tool call makes (the token lookup) and every
delivery report makes (buys, packages, delivery, alerts) are index probes, so that
machinery was most of their cost; here they take 12–20 µs.

``Plans`` compiles each statement once for the engine's dialect (SQL text, the order
of its parameters, SQLAlchemy's own bind and result processors for the column types,
so values come back exactly as through the engine; ``db.pg_fast`` uses it for
asyncpg). ``FastReads`` runs such plans on one sqlite3
connection of its own, in autocommit: every statement reads the latest committed
snapshot (WAL), and it executes and fetches without yielding to the event loop, so
concurrent callers never interleave on the connection. Rows are named tuples with the
statement's column names as attributes.

Only SQLite, only statements without expanding parameters (``db.id_lists.ByIds`` builds
plain ones for short lists), only reads. Anything else — and any error from SQLite, a
busy database included — goes through the engine as before. (Its plans also serve
``db.statements``, which runs prebuilt writes on a transaction's own connection.)
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql import Executable

from adcp_agent.db.sqlite_inline import open_sqlite

Processor = Callable[[Any], Any] | None
MAX_PLANS = 256  # far more than the prebuilt statements that use this


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # bind parameter names, in the order of the "?" placeholders
    defaults: dict[str, Any]  # values bound in the statement itself
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]
    row: type


def _result_processor(type_: Any, dialect: Dialect) -> Processor:
    """SQLAlchemy's result processor for a column of ``type_``. Without a cursor there
    is no database type code: PostgreSQL's numeric types want one (float8 needs no
    conversion, numeric and integers to float); ``float`` does either."""
    impl = type_.dialect_impl(dialect)
    try:
        return impl.result_processor(dialect, None)  # type: ignore[no-any-return]
    except (TypeError, InvalidRequestError):
        if isinstance(impl, Float | Numeric) and not impl.asdecimal:
            return _to_float
        raise


def _to_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _plan(statement: Executable, dialect: Dialect) -> _Plan | None:
    compiled = statement.compile(dialect=dialect)
    positions = compiled.positiontup
    if positions is None or any(b.expanding for b in compiled.binds.values()):
        return None
    bind_processors = compiled._bind_processors  # noqa: SLF001 - SQLAlchemy's own
    columns = compiled._result_columns  # noqa: SLF001 - (key, name, objects, type)
    results = tuple(_result_processor(c[3], dialect) for c in columns)
    names = tuple(c[0] for c in columns)
    return _Plan(
        sql=compiled.string,
        names=tuple(positions),
        defaults={n: b.effective_value for n, b in compiled.binds.items() if not b.required},
        binds=tuple(bind_processors.get(name) for name in positions),
        results=results,
        row=namedtuple("Row", names, rename=True),  # type: ignore[misc]
    )


class Plans:
    """Statements built once (module constants), compiled once for ``dialect``: the SQL
    text, its parameters in placeholder order, SQLAlchemy's own bind and result
    processors; and how to bind parameters and make rows as the engine would."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[int, tuple[Executable, _Plan | None]] = {}

    def plan(self, statement: Executable) -> _Plan | None:
        """The compiled form of a statement built once (a module constant): planning
        costs more than the engine's own path, so statements built per call are left
        to the engine once ``MAX_PLANS`` are known."""
        known = self._plans.get(id(statement))
        if known is not None and known[0] is statement:
            return known[1]
        if len(self._plans) >= MAX_PLANS:
            return None
        plan = _plan(statement, self._dialect)
        self._plans[id(statement)] = (statement, plan)  # holds the statement: ids stay unique
        return plan

    @staticmethod
    def args(plan: _Plan, params: dict[str, Any]) -> list[Any]:
        """The positional parameters of ``plan``'s SQL, processed as the engine would."""
        values = {**plan.defaults, **params}
        return [
            value if process is None else process(value)
            for value, process in zip((values[n] for n in plan.names), plan.binds, strict=True)
        ]

    @staticmethod
    def rows(plan: _Plan, raw: Sequence[Any]) -> list[Any]:
        """The driver's rows for ``plan`` as the engine would return them."""
        make, results = plan.row._make, plan.results  # type: ignore[attr-defined]
        if not any(results):
            return [make(r) for r in raw]
        return [
            make(v if p is None else p(v) for v, p in zip(r, results, strict=True)) for r in raw
        ]


class FastReads(Plans):
    def __init__(self, path: str, pragmas: Sequence[str], dialect: Dialect) -> None:
        super().__init__(dialect)
        self._path = path
        self._pragmas = pragmas
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_sqlite(
                self._path, self._pragmas, "PRAGMA query_only=ON", isolation_level=None
            )
        return self._conn

    def run(self, plan: _Plan, params: dict[str, Any]) -> list[Any]:
        raw = self._connection().execute(plan.sql, self.args(plan, params)).fetchall()
        return self.rows(plan, raw)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
