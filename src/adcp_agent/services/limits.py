"""Upper bounds on the amounts a buyer may ask for. Past them a number is a mistake (or
a probe), and unchecked it overflowed further on: a 1e300 budget made an impression goal
no 64-bit integer column holds, and the booking failed as an unexpected error."""

from __future__ import annotations

from adcp_agent.errors import AdcpError

MAX_AMOUNT = 1_000_000_000_000.0  # a budget or a daily cap, in the buy's currency
MAX_CPM = 1_000_000.0  # a bid, per thousand impressions


def _shown(value: float) -> str:
    return f"{value:,.2f}" if value < 1e15 else f"{value:.3g}"


def amount(value: float, field: str, what: str = "budget") -> float:
    """``value`` if it is at most ``MAX_AMOUNT``; else VALIDATION_ERROR on ``field``."""
    if value > MAX_AMOUNT:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A {what} of {_shown(value)} is more than the {MAX_AMOUNT:,.0f} this agent accepts.",
            field=field,
            details={"maximum": MAX_AMOUNT},
        )
    return value


def cpm(value: float, field: str) -> float:
    """``value`` if it is at most ``MAX_CPM``; else VALIDATION_ERROR on ``field``."""
    if value > MAX_CPM:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"A bid of {_shown(value)} CPM is more than the {MAX_CPM:,.0f} this agent accepts.",
            field=field,
            details={"maximum": MAX_CPM},
        )
    return value
