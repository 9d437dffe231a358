"""Column types that behave the same on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes everywhere; SQLite hands back naive values, so
    they are re-tagged as UTC on the way out and rejected if naive on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _per_dialect(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
    template = element.templates[compiler.dialect.name]
    return str(template.format(args=compiler.process(element.clauses, **kw)))


def _expression(name: str, doc: str, type_: Any, **templates: str) -> Any:
    """A SQL expression written per dialect: each template is the dialect's SQL, with
    ``{args}`` standing for the compiled arguments."""
    cls = type(name, (FunctionElement,), {"__doc__": doc, "type": type_, "inherit_cache": True})
    cls.templates = templates  # type: ignore[attr-defined]
    for dialect in templates:
        compiles(cls, dialect)(_per_dialect)
    return cls


UtcDay = _expression(
    "UtcDay",
    "The UTC day of a ``UTCDateTime`` column as ``YYYY-MM-DD`` text, in SQL.",
    String(),
    # Stored as "YYYY-MM-DD HH:MM:SS.ffffff", always in UTC (UTCDateTime).
    sqlite="substr({args}, 1, 10)",
    postgresql="to_char({args} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
)
Least = _expression(
    "Least",
    "The smaller of two numbers.",
    Float(),
    sqlite="min({args})",
    postgresql="LEAST({args})",
)
Greatest = _expression(
    "Greatest",
    "The larger of two numbers.",
    Float(),
    sqlite="max({args})",
    postgresql="GREATEST({args})",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_column(nullable: bool = False) -> Any:
    return Column(JSON, nullable=nullable)


def ts_column(nullable: bool = False, index: bool = False) -> Any:
    return Column(UTCDateTime(), nullable=nullable, index=index)


def _cache_default_factory_inspection() -> None:
    """Every SQLModel table row built in Python asks pydantic, for each field with a
    ``default_factory``, whether the factory takes the validated data, and pydantic
    answers with a fresh ``inspect.signature`` each time (for builtins like ``dict``
    that means parsing a text signature): ~4% of a create_media_buy. The answer never
    changes for a given factory, so remember it."""
    from pydantic._internal import _fields

    original = _fields.takes_validated_data_argument
    if getattr(original, "__wrapped__", None) is not None:
        return
    known: dict[Any, bool] = {}

    def takes_validated_data_argument(factory: Any) -> Any:
        try:
            return known[factory]
        except KeyError:
            known[factory] = answer = original(factory)
            return answer
        except TypeError:  # an unhashable factory: ask every time, as pydantic does
            return original(factory)

    takes_validated_data_argument.__wrapped__ = original  # type: ignore[attr-defined]
    _fields.takes_validated_data_argument = takes_validated_data_argument  # type: ignore[assignment]


_cache_default_factory_inspection()


IN_CHUNK = 5000  # well under SQLite's 32766 bound parameters per statement


def chunked(values: Sequence[Any], size: int | None = None) -> Iterator[Sequence[Any]]:
    """``values`` in slices small enough for one ``IN (...)`` each: a report over every
    buy of a large buyer must not exceed the database's parameter limit."""
    size = size or IN_CHUNK
    for i in range(0, len(values), size):
        yield values[i : i + size]
