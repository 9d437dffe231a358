"""Times and dates in tool arguments: ISO 8601 with a zone, inside the calendar this
agent plans in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from adcp_agent.errors import AdcpError

# The calendar a buyer's dates must fall in: a flight or report window outside it is a
# mistake, and at the calendar's edge (9999-12-31) the day after a date overflowed.
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2199, 12, 31)


def _in_calendar(day: date, value: str, field: str) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{value}' is outside the dates this agent plans ({EARLIEST_DAY} to {LATEST_DAY}).",
            field=field,
        )


def parse_time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AdcpError(
            "VALIDATION_ERROR", f"'{value}' is not an ISO 8601 date-time.", field=field
        ) from None
    if parsed.tzinfo is None:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"'{value}' has no time zone; add 'Z' or an offset.",
            field=field,
        )
    _in_calendar(parsed.date(), value, field)  # (before UTC: 0001-01-01+01:00 underflows)
    return parsed.astimezone(UTC)


def filter_time(filters: Any, name: str) -> datetime | None:
    """A list call's ``filters.<name>`` time bound, parsed (None when not given)."""
    value = getattr(filters, name)
    return parse_time(value, f"filters.{name}") if value else None


def parse_day(value: str, field: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise AdcpError(
            "VALIDATION_ERROR", f"'{value}' is not a YYYY-MM-DD date.", field=field
        ) from None
    _in_calendar(day, value, field)
    return day


def flight_from_dates(start: str, end: str, now: datetime) -> tuple[datetime | None, datetime]:
    """Seed date-only flights run from the start day's first second (or now, when the
    start is today) through the end day's last second, UTC."""
    first = parse_day(start, "flight_start_date")
    last = parse_day(end, "flight_end_date")
    begins = None if first <= now.date() else datetime.combine(first, time(), UTC)
    ends = datetime.combine(last, time(), UTC) + timedelta(days=1) - timedelta(seconds=1)
    return begins, ends
