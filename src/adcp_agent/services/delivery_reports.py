"""Reading delivery back: per buy and package, totals for a date range, daily and hourly
buckets, lifetime pacing and the buy's pacing alerts. Every read first materialises
delivery up to the clock's "now" (``delivery.catch_up``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlalchemy import select as core_select
from sqlmodel import col

from adcp_agent.clock import floor_hour
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models import Product
from adcp_agent.db.models_delivery import DeliveryHour, PacingAlert
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import UTCDateTime, UtcDay, chunked
from adcp_agent.errors import AdcpError
from adcp_agent.services import buy_state, catalog, conversions, delivery, media_reads, pacing
from adcp_agent.services.conversions import Attributed
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState


@dataclass
class Totals:
    impressions: int = 0
    clicks: int = 0
    completions: int = 0
    spend: float = 0.0

    def add(self, row: Any) -> None:  # a delivery_hours row or Totals
        self.impressions += row.impressions
        self.clicks += row.clicks
        self.completions += row.completions
        self.spend += row.spend


@dataclass
class PackageReport:
    package: Package
    product: Product | None
    period: Totals = field(default_factory=Totals)
    lifetime: Totals = field(default_factory=Totals)
    days: dict[date, Totals] = field(default_factory=dict)
    hours: dict[datetime, Totals] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)
    expected_spend: float = 0.0
    pacing_index: float | None = None
    delivery_status: str = "delivering"
    # Conversions attributed to it in the period (services.conversions).
    conversions: Attributed | None = None

    @property
    def inventory(self) -> dict[str, Any]:
        return self.product.inventory if self.product else {}


@dataclass
class BuyReport:
    buy: MediaBuy
    status: str
    packages: list[PackageReport]
    period: Totals
    days: dict[date, Totals]
    hours: dict[datetime, Totals]
    pacing_index: float | None
    alerts: list[PacingAlert]
    flight_progress: float


@dataclass
class DeliveryReport:
    start: datetime  # inclusive
    end: datetime  # exclusive
    now: datetime
    buys: list[BuyReport]
    missing: list[str]
    warnings: list[AdcpError]

    @property
    def currency(self) -> str:
        return self.buys[0].buy.currency if self.buys else "USD"


@dataclass(frozen=True)
class ReportQuery:
    media_buy_ids: Sequence[str] = ()
    statuses: Sequence[str] = ()
    account: dict[str, Any] | None = None
    start_date: date | None = None
    end_date: date | None = None
    # Fill PackageReport.hours and BuyReport.hours (hourly windows, an "hour" report
    # dimension). Without it the database sums each day, and hours stay empty.
    hourly: bool = False
    # [start, end) on hour boundaries instead of dates (a reporting webhook's period);
    # needs ``hourly``.
    window: tuple[datetime, datetime] | None = None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def period_of(
    query: ReportQuery, buys: Sequence[MediaBuy], now: datetime, first_row: datetime | None
) -> tuple[datetime, datetime]:
    """[start, end) of the report: the requested dates (whole UTC days), else lifetime:
    from the earliest flight start (or earlier row: ad servers report whole days) to
    the clock's current hour."""
    if query.window is not None:
        return query.window
    lifetime_end = floor_hour(now)
    first_start = min((floor_hour(b.start_time) for b in buys), default=lifetime_end)
    if first_row is not None:
        first_start = min(first_start, first_row)
    start = _midnight(query.start_date) if query.start_date else first_start
    if query.end_date:
        end = _midnight(query.end_date) + timedelta(days=1)
    else:
        end = max(lifetime_end, start)
    return min(start, end), end


# Built once (building and cache-keying a statement per call costs more than running
# it), for each chunk of buy ids (db.id_lists.ByIds).
_HOURS_OF = ByIds(
    lambda in_ids: core_select(
        col(DeliveryHour.package_id),
        col(DeliveryHour.hour),
        col(DeliveryHour.source),
        col(DeliveryHour.impressions),
        col(DeliveryHour.clicks),
        col(DeliveryHour.completions),
        col(DeliveryHour.spend),
    ).where(in_ids(col(DeliveryHour.media_buy_id)))
)
_DAY = case(
    (col(DeliveryHour.hour) >= bindparam("cut", type_=UTCDateTime()), ""),
    else_=UtcDay(col(DeliveryHour.hour)),
)
# Each package's delivery summed per source and UTC day (rows from the hour "cut" on —
# past the period's end — in a bucket of their own, ""): about a 24th of the rows.
_DAYS_OF = ByIds(
    lambda in_ids: (
        core_select(
            col(DeliveryHour.package_id),
            col(DeliveryHour.source),
            _DAY.label("day"),
            func.min(col(DeliveryHour.hour)).label("first_hour"),
            func.sum(col(DeliveryHour.impressions)).label("impressions"),
            func.sum(col(DeliveryHour.clicks)).label("clicks"),
            func.sum(col(DeliveryHour.completions)).label("completions"),
            func.sum(col(DeliveryHour.spend)).label("spend"),
        )
        .where(in_ids(col(DeliveryHour.media_buy_id)))
        .group_by(col(DeliveryHour.package_id), col(DeliveryHour.source), _DAY)
    )
)
_ALERTS = PacingAlert.__table__  # type: ignore[attr-defined]
_ALERTS_OF = ByIds(lambda in_ids: core_select(_ALERTS).where(in_ids(_ALERTS.c.media_buy_id)))


# A report that names no buys covers the newest this many of the caller's matching buys
# (a buyer with years of history would otherwise ask for every hour of every buy in one
# call); a warning says how many matched and how to choose others.
UNLISTED_LIMIT = 100


async def report(state: AppState, caller: Caller, query: ReportQuery) -> DeliveryReport:
    now = state.clock.now()
    views, missing, matching = await media_reads.page_buys(
        state,
        caller,
        media_buy_ids=query.media_buy_ids,
        statuses=query.statuses,
        account_ref=query.account,
        now=now,
        limit=None if query.media_buy_ids else UNLISTED_LIMIT,
    )
    warnings = [] if matching <= len(views) else [_truncated(matching, len(views))]
    warnings += [
        AdcpError(
            exc.code,
            f"Delivery of {buy.media_buy_id} could not be refreshed from the ad server; "
            f"figures are as of the last refresh. ({exc.message})",
            recovery="transient",
            details={"media_buy_id": buy.media_buy_id},
        )
        # An ad server that is down: report what is stored, and say so.
        for buy, exc in await delivery.catch_up_many(state, [v.buy for v in views], now)
    ]
    if query.start_date and query.end_date and query.start_date > query.end_date:
        raise AdcpError("VALIDATION_ERROR", "end_date is before start_date.", field="end_date")
    ids = [v.buy.media_buy_id for v in views]
    # Where the period ends, unless it ends before its own start (no rows then).
    cut = _midnight(query.end_date) + timedelta(days=1) if query.end_date else floor_hour(now)
    rows: list[Any] = []
    alerts: list[PacingAlert] = []
    for part in chunked(ids):
        # Plain rows, not ORM objects (see media_reads): a lifetime report reads every
        # hour (or day) of every buy.
        if query.hourly:
            rows += await state.db.read(*_HOURS_OF.bind(part))
        else:
            rows += await state.db.read(*_DAYS_OF.bind(part, cut=cut))
        alerts += await state.db.read(*_ALERTS_OF.bind(part))
    alerts.sort(key=lambda a: (a.day, a.kind))
    products = (await catalog.tenant_catalog(state.db, caller)).products_by_id
    first_row = min((r.hour if query.hourly else r.first_hour for r in rows), default=None)
    start, end = period_of(query, [v.buy for v in views], now, first_row)
    by_package: dict[str, PackageReport] = {}
    for view in views:
        for p in view.packages:
            by_package[p.package_id] = PackageReport(p, products.get(p.product_id))
    _add(by_package, rows, (_hour_slot if query.hourly else _day_slot)(start, end))
    for package_id, attributed in (await conversions.attributed(state.db, ids, start, end)).items():
        if package_id in by_package:
            by_package[package_id].conversions = attributed
    as_of = floor_hour(now)
    alerts_of: dict[str, list[PacingAlert]] = {}
    for alert in alerts:
        alerts_of.setdefault(alert.media_buy_id, []).append(alert)
    buys = [
        _buy_report(
            view,
            [by_package[p.package_id] for p in view.packages],
            alerts_of.get(view.buy.media_buy_id, []),
            now,
            as_of,
        )
        for view in views
    ]
    first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
    for b in buys:
        b.alerts = [a for a in b.alerts if first_day <= a.day <= last_day]
    return DeliveryReport(start, end, now, buys, missing, warnings)


def _add(
    by_package: dict[str, PackageReport],
    rows: Sequence[Any],
    slot: Callable[[Any], tuple[date, datetime | None] | None],
) -> None:
    """Add each row to its package's lifetime and, when ``slot`` places it in the
    period (its day, and its hour for hourly rows), to the period, day and hour."""
    for row in rows:
        pr = by_package.get(row.package_id)
        if pr is None:
            continue
        pr.lifetime.add(row)
        pr.sources.add(row.source)
        where = slot(row)
        if where is not None:
            day, hour = where
            pr.period.add(row)
            pr.days.setdefault(day, Totals()).add(row)
            if hour is not None:
                pr.hours.setdefault(hour, Totals()).add(row)


def _hour_slot(start: datetime, end: datetime) -> Callable[[Any], tuple[date, datetime] | None]:
    return lambda row: (row.hour.date(), row.hour) if start <= row.hour < end else None


def _day_slot(start: datetime, end: datetime) -> Callable[[Any], tuple[date, None] | None]:
    """For per-day sums. A day is wholly inside the period or wholly outside: the
    period starts at a midnight or at the earliest row, and the rows from its end on
    were summed apart (the "" bucket of ``_DAYS_OF``)."""
    first_day = start.date()

    def slot(row: Any) -> tuple[date, None] | None:
        if not row.day or start >= end:
            return None
        day = date.fromisoformat(row.day)
        return (day, None) if day >= first_day else None

    return slot


def _truncated(matching: int, included: int) -> AdcpError:
    return AdcpError(
        "RESULTS_TRUNCATED",
        f"{matching:,} of your media buys match; without media_buy_ids a report covers "
        f"the {included} newest.",
        field="media_buy_ids",
        recovery="correctable",
        suggestion="Pass media_buy_ids (up to 1000; get_media_buys lists them page by page) "
        "or a narrower status_filter.",
        details={"matching": matching, "included": included},
    )


def _buy_report(
    view: media_reads.BuyView,
    packages: list[PackageReport],
    alerts: Sequence[PacingAlert],  # this buy's
    now: datetime,
    as_of: datetime,
) -> BuyReport:
    buy = view.buy
    expected_total = actual_total = 0.0
    period, days, hours = Totals(), {}, {}
    confirmed = buy.state not in ("pending_approval", "rejected", "provisioning")
    for pr in packages:
        pr.expected_spend = pacing.expected_spend(pr.package, buy.start_time, buy.end_time, as_of)
        if confirmed:
            pr.pacing_index = pacing.index(pr.lifetime.spend, pr.expected_spend)
        pr.delivery_status = pacing.delivery_status(
            buy, pr.package, pr.lifetime.spend, pr.lifetime.impressions, now
        )
        if not pr.package.paused:
            expected_total += pr.expected_spend
            actual_total += pr.lifetime.spend
        period.add(pr.period)
        for key, t in pr.days.items():
            days.setdefault(key, Totals()).add(t)
        for key, t in pr.hours.items():
            hours.setdefault(key, Totals()).add(t)
    status = buy_state.wire_status(buy, now)
    return BuyReport(
        buy=buy,
        status=status,
        packages=packages,
        period=period,
        days=dict(sorted(days.items())),
        hours=dict(sorted(hours.items())),
        pacing_index=pacing.index(actual_total, expected_total) if confirmed else None,
        alerts=list(alerts),
        flight_progress=pacing.elapsed_fraction(buy.start_time, buy.end_time, now),
    )
