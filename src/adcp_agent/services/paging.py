"""Keyset (cursor) pagination shared by the admin list endpoints.

Pages are cut on ``(created_at, id)``, never on an offset, so rows written while a client
walks the list neither repeat nor vanish. The cursor is opaque to clients (URL-safe
base64 of JSON) and names the list it belongs to, so a cursor from one list is refused
by another instead of silently returning a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from adcp_agent.errors import AdcpError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class PageRequest(BaseModel):
    """``?limit=&cursor=`` as every admin list endpoint takes them."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


@dataclass(frozen=True)
class Position:
    """Where the previous page ended."""

    created_at: datetime
    ident: str | int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    has_more: bool


def encode_cursor(kind: str, created_at: datetime, ident: str | int) -> str:
    raw = json.dumps({"k": kind, "t": created_at.isoformat(), "i": ident}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, ident_type: type[str] | type[int] = str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError("cursor from another list")
        created_at = datetime.fromisoformat(data["t"])
        ident = data["i"]
        if (
            created_at.tzinfo is None
            or not isinstance(ident, ident_type)
            or isinstance(ident, bool)
        ):
            raise ValueError("malformed position")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise AdcpError(
            "INVALID_REQUEST",
            "The cursor is not valid for this list.",
            field="cursor",
            suggestion="Pass the next_cursor value from the previous page unchanged, "
            "or omit cursor to start from the first page.",
        ) from None
    return Position(created_at, ident)


def after(
    created_col: Any, id_col: Any, position: Position, *, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly past ``position`` in ``(created_at, id)`` order."""
    if descending:
        return or_(
            created_col < position.created_at,
            and_(created_col == position.created_at, id_col < position.ident),
        )
    return or_(
        created_col > position.created_at,
        and_(created_col == position.created_at, id_col > position.ident),
    )


def build_page(
    rows: list[T],
    limit: int,
    kind: str,
    position_of: Callable[[T], tuple[datetime, str | int]],
) -> Page[T]:
    """``rows`` was fetched with ``limit + 1``: the extra row only says there is more."""
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = None
    if has_more and items:
        created_at, ident = position_of(items[-1])
        next_cursor = encode_cursor(kind, created_at, ident)
    return Page(items=items, next_cursor=next_cursor, has_more=has_more)


def conditions(
    members: Sequence[tuple[Any, Sequence[Any]]] = (),
    ranges: Sequence[tuple[Any, datetime | None, datetime | None]] = (),
) -> list[ColumnElement[bool]]:
    """A list call's filters as SQL: each column IN its values (when any are given), and
    each column within [after, before) (each bound when given)."""
    out: list[ColumnElement[bool]] = [
        column.in_(list(values)) for column, values in members if values
    ]
    for column, since, until in ranges:
        if since is not None:
            out.append(column >= since)
        if until is not None:
            out.append(column < until)
    return out
