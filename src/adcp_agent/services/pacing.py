"""Pacing: where a package's spend should be at a given moment, where it is, and the
alerts raised when a buy drifts from its curve.

Expected share of the budget spent after a fraction ``t`` of the flight:
``even`` → t; ``front_loaded`` → 1 − (1 − t)²; ``asap`` is measured against the even
curve (it may run ahead by design, so it never raises an over-pacing alert).
The pacing index is actual ÷ expected spend: 1.0 on track, below 1 behind, above 1 ahead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models_delivery import PacingAlert
from adcp_agent.db.models_media import MediaBuy, Package

UNDER, UNDER_CRITICAL = 0.8, 0.5
OVER, OVER_CRITICAL = 1.2, 1.5
# Too early in a flight, a few hours of noise look like a trend: no alerts before this.
MIN_ELAPSED = timedelta(hours=6)

DeliveryStatus = Literal["delivering", "completed", "budget_exhausted", "flight_ended", "goal_met"]


def expected_share(pacing: str, t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    if pacing == "front_loaded":
        return 1 - (1 - t) ** 2
    return t


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOUR = timedelta(hours=1)
_WEEK = timedelta(days=7)


def week_hours(targeting: Mapping[str, Any] | None) -> frozenset[int] | None:
    """The hours of the week (monday 0-23 = 0-23, … sunday = 144-167) an overlay's
    daypart targets allow; None when it has none (every hour)."""
    windows = (targeting or {}).get("daypart_targets") or []
    if not windows:
        return None
    return frozenset(
        DAYS.index(day) * 24 + hour
        for w in windows
        for day in w["days"]
        for hour in range(int(w["start_hour"]), int(w["end_hour"]))
    )


def _served_hours(start: datetime, at: datetime, hours: frozenset[int]) -> float:
    """How many of ``hours`` (of the week) fall between ``start`` and ``at``."""
    if at <= start:
        return 0.0
    weeks = (at - start) // _WEEK
    count = float(weeks * len(hours))
    begin = start + weeks * _WEEK
    slot = begin.replace(minute=0, second=0, microsecond=0)
    while slot < at:
        if slot.weekday() * 24 + slot.hour in hours:
            count += (min(slot + _HOUR, at) - max(slot, begin)) / _HOUR
        slot += _HOUR
    return count


def elapsed_fraction(
    start: datetime, end: datetime, at: datetime, hours: frozenset[int] | None = None
) -> float:
    """How far into the flight ``at`` is; with daypart ``hours``, counted in the hours
    the package serves (so its pace is planned over them)."""
    if hours is not None:
        total = _served_hours(start, end, hours)
        return 1.0 if total <= 0 else min(max(_served_hours(start, at, hours) / total, 0.0), 1.0)
    span = (end - start).total_seconds()
    if span <= 0:
        return 1.0
    return min(max((at - start).total_seconds() / span, 0.0), 1.0)


def expected_spend(package: Package, start: datetime, end: datetime, now: datetime) -> float:
    """What ``package`` should have spent by ``now`` in its buy's flight ``start`` to
    ``end`` — over its own flight where it has one (or from when it was added)."""
    start, end = package.start_time or start, package.end_time or end
    served = elapsed_fraction(start, end, now, week_hours(package.targeting))
    return package.budget * expected_share(package.pacing, served)


def index(spent: float, expected: float) -> float | None:
    """None until something was expected (before the flight starts)."""
    if expected <= 0.005:
        return None
    return round(spent / expected, 2)


def delivery_status(
    buy: MediaBuy, package: Package, spent: float, impressions: int, now: datetime
) -> DeliveryStatus:
    if spent >= package.budget - 0.01:
        return "budget_exhausted"
    if package.guaranteed and package.impressions_goal and impressions >= package.impressions_goal:
        return "goal_met"
    ended = now >= (package.end_time or buy.end_time)
    if buy.state == "canceled" or package.canceled_at is not None or ended:
        return "completed" if spent >= 0.95 * package.budget else "flight_ended"
    return "delivering"


@dataclass(frozen=True)
class Assessment:
    kind: Literal["underpacing", "overpacing"]
    severity: Literal["warning", "critical"]
    pacing_index: float
    expected: float
    actual: float
    message: str
    recommendation: str


def assess(
    buy: MediaBuy,
    packages: Sequence[Package],
    spent: Mapping[str, float],
    deliverable: set[str],
    now: datetime,
    floors: Mapping[str, float],
) -> Assessment | None:
    """The buy's pacing verdict now, or None when it is on track (or too early, or not
    running: a paused buy is expected to fall behind)."""
    if buy.state != "live" or now - buy.start_time < MIN_ELAPSED or now >= buy.end_time:
        return None
    running = [p for p in packages if not p.paused]
    expected = sum(expected_spend(p, buy.start_time, buy.end_time, now) for p in running)
    actual = sum(spent.get(p.package_id, 0.0) for p in running)
    under = index(actual, expected)
    if under is not None and under < UNDER:
        behind = round((1 - under) * 100)
        return Assessment(
            "underpacing",
            "critical" if under < UNDER_CRITICAL else "warning",
            under,
            round(expected, 2),
            round(actual, 2),
            f"Media buy {buy.media_buy_id} is {behind}% behind pace. Expected "
            f"{expected:,.2f} {buy.currency}, actual {actual:,.2f}.",
            _under_advice(buy, running, spent, deliverable, now, floors),
        )
    steady = [p for p in running if p.pacing != "asap"]
    expected = sum(expected_spend(p, buy.start_time, buy.end_time, now) for p in steady)
    actual = sum(spent.get(p.package_id, 0.0) for p in steady)
    over = index(actual, expected)
    if over is not None and over > OVER:
        return Assessment(
            "overpacing",
            "critical" if over > OVER_CRITICAL else "warning",
            over,
            round(expected, 2),
            round(actual, 2),
            f"Media buy {buy.media_buy_id} is {round((over - 1) * 100)}% ahead of pace. "
            f"Expected {expected:,.2f} {buy.currency}, actual {actual:,.2f}.",
            "The budget will run out before the flight ends: set a daily cap, lower bids or "
            "switch pacing to even.",
        )
    return None


def _under_advice(
    buy: MediaBuy,
    running: Sequence[Package],
    spent: Mapping[str, float],
    deliverable: set[str],
    now: datetime,
    floors: Mapping[str, float],
) -> str:
    silent = [p.package_id for p in running if p.package_id not in deliverable]
    if silent:
        return (
            f"Package(s) {', '.join(silent)} have no approved creative on the ad server and "
            "cannot serve: assign one with sync_creatives."
        )
    remaining = sum(p.budget - spent.get(p.package_id, 0.0) for p in running)
    days_left = max((buy.end_time - now).total_seconds() / 86_400, 1 / 24)
    needed = remaining / days_left
    if buy.daily_cap is not None and buy.daily_cap < needed:
        return (
            f"The daily cap of {buy.daily_cap:,.2f} is below the {needed:,.2f} a day needed "
            "to spend the budget: raise or remove it."
        )
    low_bids = [
        f"{p.package_id} bids {p.rate:.2f} vs a {floors[p.package_id]:.2f} floor"
        for p in running
        if not p.guaranteed and p.package_id in floors
    ]
    if low_bids:
        return f"Consider increasing bids or widening targeting ({'; '.join(low_bids)})."
    return "Widen targeting or extend the flight; the inventory cannot fill this pace."


async def record_alert(
    session: AsyncSession, buy: MediaBuy, verdict: Assessment, now: datetime
) -> None:
    """One row per buy, day and kind: the first call inserts it, later calls that day
    refresh its figures (update first, so a second writer never duplicates it)."""
    values = {
        "severity": verdict.severity,
        "pacing_index": verdict.pacing_index,
        "expected_spend": verdict.expected,
        "actual_spend": verdict.actual,
        "message": verdict.message,
        "recommendation": verdict.recommendation,
        "observed_at": now,
    }
    result = await session.exec(
        update(PacingAlert)
        .where(
            PacingAlert.media_buy_id == buy.media_buy_id,  # type: ignore[arg-type]
            PacingAlert.day == now.date(),  # type: ignore[arg-type]
            PacingAlert.kind == verdict.kind,  # type: ignore[arg-type]
        )
        .values(**values)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return
    # The update above holds the write lock on SQLite; on Postgres a concurrent insert
    # fails the caller's transaction with IntegrityError, which it treats as "done".
    session.add(
        PacingAlert(
            tenant_id=buy.tenant_id,
            principal_id=buy.principal_id,
            media_buy_id=buy.media_buy_id,
            day=now.date(),
            kind=verdict.kind,
            **values,
        )
    )


def alert_fields(a: PacingAlert) -> dict[str, Any]:
    """What an alert says, as every surface shows it (delivery reports, REST)."""
    return {
        "day": a.day.isoformat(),
        "type": a.kind,
        "severity": a.severity,
        "pacing_index": a.pacing_index,
        "expected_spend": a.expected_spend,
        "actual_spend": a.actual_spend,
        "message": a.message,
        "recommendation": a.recommendation,
    }


def alert_view(a: PacingAlert) -> dict[str, Any]:
    """One alert as the buyer and admin APIs list it: whose, what, and when observed."""
    return {
        "media_buy_id": a.media_buy_id,
        "tenant_id": a.tenant_id,
        "principal_id": a.principal_id,
        **alert_fields(a),
        "observed_at": a.observed_at.isoformat().replace("+00:00", "Z"),
    }


async def alerts(
    db: Database,
    *,
    media_buy_ids: Sequence[str] | None = None,
    tenant_id: str | None = None,
    severity: str | None = None,
    limit: int = 200,
) -> list[PacingAlert]:
    """Newest first: by buys (buyer view) or by tenant (publisher view)."""
    async with db.reading() as session:
        stmt = select(PacingAlert)
        if media_buy_ids is not None:
            stmt = stmt.where(col(PacingAlert.media_buy_id).in_(list(media_buy_ids)))
        if tenant_id:
            stmt = stmt.where(PacingAlert.tenant_id == tenant_id)
        if severity:
            stmt = stmt.where(PacingAlert.severity == severity)
        stmt = stmt.order_by(col(PacingAlert.day).desc(), col(PacingAlert.media_buy_id))
        return list((await session.exec(stmt.limit(limit))).all())
