"""Upper bounds on the amounts a buyer may ask for. Past them a number is a mistake (or
a probe), and unchecked it overflowed further on: a 1e300 budget made an impression goal
no 64-bit integer column holds, and the booking failed as an unexpected error."""

from __future__ import annotations

from adcp_agent.errors import AdcpError

MAX_AMOUNT = 1_000_000_000_000.0  # a budget or a daily cap, in the buy's currency
MAX_CPM = 1_000_000.0  # a bid, per thousand impressions


def _at_most(value: float, maximum: float, field: str, what: str) -> float:
    if value > maximum:
        shown = f"{value:,.2f}" if value < 1e15 else f"{value:.3g}"
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A {what} of {shown} is more than the {maximum:,.0f} this agent accepts.",
            field=field,
            details={"maximum": maximum},
        )
    return value


def amount(value: float, field: str, what: str = "budget") -> float:
    """``value`` if it is at most ``MAX_AMOUNT``; else VALIDATION_ERROR on ``field``."""
    return _at_most(value, MAX_AMOUNT, field, what)


def cpm(value: float, field: str) -> float:
    """``value`` (a bid) if it is at most ``MAX_CPM``; else VALIDATION_ERROR on ``field``."""
    return _at_most(value, MAX_CPM, field, "bid (CPM)")
