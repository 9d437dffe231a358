"""Moving a booked buy's dates (update_media_buy ``start_time`` / ``end_time``): the
buy's flight, each package's line, and packages with flights of their own kept inside
the new one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from adcp_agent.adapter_protocol import LineChange
from adcp_agent.db.models import Product
from adcp_agent.db.models_media import Package, package_flight
from adcp_agent.errors import AdcpError
from adcp_agent.services import buy_state, catalog, media_buys

if TYPE_CHECKING:
    from adcp_agent.services.update_plan import Op, Plan


def move_end(plan: Plan, op: Op, end: datetime) -> None:
    """A new end for the buy: the lines of packages that run to the buy's end move
    with it (a package's own end past it becomes the buy's)."""
    plan.buy.end_time = end
    for package in plan.packages.values():
        fit(package, plan.buy.start_time, end, op.field)
        if package.end_time is None:  # it runs to the buy's end (now moved)
            plan.line(package, LineChange(end=end), f"{package.package_id} end {end:%Y-%m-%d}")


def move_start(plan: Plan, op: Op, now: datetime, products: dict[str, Product]) -> None:
    """A new start for a buy that has not started (``op.value``: the start, None for
    as soon as possible, and a new end asked for with it, if any): each line moves in
    one change."""
    b = plan.buy
    if now >= b.start_time:
        raise AdcpError(
            "ACTION_NOT_ALLOWED",
            f"Media buy '{b.media_buy_id}' started at {b.start_time.isoformat()}; a running "
            "buy's start cannot be moved. Nothing was changed.",
            field=op.field,
            suggestion="Change end_time, or pause the buy.",
            details={
                "attempted_action": "update_flight_dates",
                "reason": "wrong_status",
                "currently_available_actions": buy_state.actions(b, now)["available_actions"],
            },
        )
    asked, end = op.value
    start = asked or now
    if start < now - media_buys.START_GRACE:
        raise AdcpError("VALIDATION_ERROR", "start_time is in the past.", field=op.field)
    if start >= (end or b.end_time):
        raise AdcpError(
            "VALIDATION_ERROR",
            "start_time must be before end_time.",
            field="end_time" if end else op.field,
        )
    for package in plan.packages.values():
        product = products.get(package.product_id)
        lead = catalog.lead_days(product) if product and package.canceled_at is None else 0
        earliest = now + timedelta(days=lead)
        if lead and start.date() < earliest.date():
            raise AdcpError(
                "VALIDATION_ERROR",
                f"'{package.product_id}' needs {lead} days of lead time; the earliest start "
                f"is {earliest.date().isoformat()}.",
                field=op.field,
            )
    ends = {p.package_id: package_flight(p, b)[1] for p in plan.packages.values()}
    b.start_time, b.end_time = start, end or b.end_time
    for package in plan.packages.values():
        fit(package, start, b.end_time, op.field)
        runs_from, runs_to = package_flight(package, b)
        # Each line gets one change with both edges where both moved (never an
        # interim window that ends before it starts).
        moved_end = runs_to if runs_to != ends[package.package_id] else None
        told = f"start {runs_from:%Y-%m-%d}" + (f", end {moved_end:%Y-%m-%d}" if moved_end else "")
        plan.line(
            package, LineChange(start=runs_from, end=moved_end), f"{package.package_id} {told}"
        )


def fit(package: Package, start: datetime, end: datetime, field: str) -> None:
    """A package with a flight of its own, kept inside its buy's new ``start``-``end``:
    an edge the new flight passes becomes the buy's; a package left with no time in it
    is refused."""
    if package.start_time is not None and package.start_time <= start:
        package.start_time = None
    if package.end_time is not None and package.end_time >= end:
        package.end_time = None
    left = (package.start_time or start) < (package.end_time or end)
    if not left and package.canceled_at is None:  # (a canceled one runs no more anyway)
        raise AdcpError(
            "VALIDATION_ERROR",
            f"Package '{package.package_id}' runs its own flight, which the new dates leave "
            "no time in. Nothing was changed.",
            field=field,
            suggestion="Cancel that package first, or choose dates that overlap it.",
        )
