"""Delivery reports → AdCP 3.1 ``get_media_buy_delivery`` payloads (and the seed-003
report rows built from the same figures)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from adcp_agent.clock import floor_hour
from adcp_agent.db.models_delivery import PacingAlert
from adcp_agent.services import delivery, pacing
from adcp_agent.services.conversions import Attributed
from adcp_agent.services.delivery_reports import BuyReport, DeliveryReport, PackageReport, Totals
from adcp_agent.services.outbox import iso

PLAYABLE = frozenset({"ctv", "olv", "streaming_audio", "podcast"})
GRANULARITIES = ("hourly", "daily", "monthly")


def period(start: datetime, end: datetime) -> dict[str, str]:
    """AdCP periods are inclusive: the last second before ``end``."""
    return {"start": iso(start) or "", "end": iso(max(start, end - timedelta(seconds=1))) or ""}


def playable(pr: PackageReport) -> bool:
    return bool(pr.product and PLAYABLE & set(pr.product.channels))


def metrics(t: Totals, *, completions: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "impressions": t.impressions,
        "spend": round(t.spend, 2),
        "clicks": t.clicks,
    }
    if t.impressions:
        out["ctr"] = round(t.clicks / t.impressions, 6)
        out["cpm"] = round(t.spend / t.impressions * 1000, 4)
    if completions:
        out["completed_views"] = t.completions
        out["completion_rate"] = round(t.completions / t.impressions, 4) if t.impressions else None
    return out


def conversion_metrics(attributed: Sequence[Attributed | None], spend: float) -> dict[str, Any]:
    """AdCP's conversion figures for what ``attributed`` sums to (nothing when none)."""
    total = Attributed()
    for a in attributed:
        for event_type, (count, value) in (a.by_type if a else {}).items():
            total.add(event_type, count, value)
    if not total.by_type:
        return {}
    out: dict[str, Any] = {
        "conversions": total.count,
        "conversion_value": round(total.value, 2),
        "by_event_type": [
            {"event_type": t, "count": c, "value": round(v, 2)}
            for t, (c, v) in sorted(total.by_type.items())
        ],
    }
    if spend > 0:
        out["roas"] = round(total.value / spend, 4)
    if total.count:
        out["cost_per_acquisition"] = round(spend / total.count, 4)
    if "lead" in total.by_type:
        out["leads"] = total.by_type["lead"][0]
    return out


def _daily(days: dict[Any, Totals]) -> list[dict[str, Any]]:
    return [
        {"date": d.isoformat(), "impressions": t.impressions, "spend": round(t.spend, 2)}
        for d, t in sorted(days.items())
    ]


def package_row(pr: PackageReport, b: BuyReport, include_daily: bool) -> dict[str, Any]:
    t, p = pr.period, pr.package
    auction = not p.guaranteed and p.pricing_model == "cpm"
    rate = t.spend / t.impressions * 1000 if auction and t.impressions else p.rate
    out: dict[str, Any] = {
        "package_id": p.package_id,
        **metrics(t, completions=playable(pr)),
        **conversion_metrics([pr.conversions], t.spend),
        "pricing_model": p.pricing_model,
        "rate": round(rate, 4),  # auctions: the effective clearing CPM
        "currency": b.buy.currency,
        "delivery_status": pr.delivery_status,
        "paused": p.paused or b.buy.state == "paused",
        "is_final": b.status in ("completed", "canceled"),
    }
    viewability = pr.inventory.get("viewability")
    if viewability is not None and t.impressions:
        out["viewability"] = {
            "measurable_impressions": t.impressions,
            "viewable_impressions": round(t.impressions * float(viewability)),
            "viewable_rate": float(viewability),
            "standard": "mrc",
        }
    if pr.pacing_index is not None:
        out["pacing_index"] = pr.pacing_index
    if include_daily:
        out["daily_breakdown"] = _daily(pr.days)
    return out


# Delivery is materialised hour by hour (``delivery.catch_up``): figures lag by up to
# an hour.
SNAPSHOT_STALENESS = 3600


def snapshot(pr: PackageReport, b: BuyReport, now: datetime) -> dict[str, Any]:
    """AdCP's package ``snapshot`` (get_media_buys include_snapshot): lifetime figures
    as of the last materialised hour."""
    t = pr.lifetime
    as_of = min(floor_hour(now), delivery.ceil_hour(b.buy.end_time))
    out: dict[str, Any] = {
        "as_of": iso(as_of),
        "staleness_seconds": SNAPSHOT_STALENESS,
        "impressions": t.impressions,
        "spend": round(t.spend, 2),
        "clicks": t.clicks,
    }
    if pr.pacing_index is not None:
        out["pacing_index"] = pr.pacing_index
    if b.status in ("active", "completed", "canceled") and now >= b.buy.start_time:
        status = pr.delivery_status
        running = b.status == "active" and not pr.package.paused
        started = now - b.buy.start_time >= timedelta(seconds=SNAPSHOT_STALENESS)
        if status == "delivering" and running and started and not t.impressions:
            status = "not_delivering"
        out["delivery_status"] = status
    return out


def alert(a: PacingAlert) -> dict[str, Any]:
    return pacing.alert_fields(a)


def _buckets(
    start: datetime, end: datetime, granularity: str
) -> Iterator[tuple[datetime, datetime]]:
    cursor = start
    while cursor < end:
        if granularity == "hourly":
            nxt = cursor + timedelta(hours=1)
        elif granularity == "daily":
            nxt = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + timedelta(days=1)
        else:
            year, month = divmod(cursor.month, 12)
            nxt = datetime(cursor.year + year, month + 1, 1, tzinfo=UTC)
        nxt = min(nxt, end)
        yield cursor, nxt
        cursor = nxt


def windows(b: BuyReport, start: datetime, end: datetime, granularity: str) -> list[dict[str, Any]]:
    """Contiguous slices partitioning [start, end) at the requested granularity."""
    completions = any(playable(pr) for pr in b.packages)
    # Hourly slices add up hours (a report made with ReportQuery.hourly); daily and
    # monthly ones whole days: a day's figures start at its midnight or at the period's
    # start, and end before the next midnight or the period's end.
    if granularity == "hourly":
        figures = list(b.hours.items())
    else:
        figures = [(datetime.combine(d, time(), UTC), t) for d, t in b.days.items()]
    out: list[dict[str, Any]] = []
    for lo, hi in _buckets(start, end, granularity):
        total = Totals()
        # A day's midnight may precede the period's start, in the first daily slice.
        begins = lo if granularity == "hourly" else datetime.combine(lo.date(), time(), UTC)
        for when, t in figures:
            if begins <= when < hi:
                total.add(t)
        out.append(
            {
                "window_start": iso(lo),
                "window_end": iso(hi),
                "totals": metrics(total, completions=completions),
            }
        )
    return out


def buy_row(
    b: BuyReport, report: DeliveryReport, include_daily: bool, granularity: str | None
) -> dict[str, Any]:
    t = b.period
    totals = metrics(t, completions=any(playable(pr) for pr in b.packages))
    totals["effective_rate"] = round(t.spend / t.impressions * 1000, 4) if t.impressions else 0.0
    totals |= conversion_metrics([pr.conversions for pr in b.packages], t.spend)
    models = {pr.package.pricing_model for pr in b.packages}
    out: dict[str, Any] = {
        "media_buy_id": b.buy.media_buy_id,
        "status": b.status,
        "is_final": b.status in ("completed", "canceled"),
        "totals": totals,
        "by_package": [package_row(pr, b, include_daily) for pr in b.packages],
        "daily_breakdown": _daily(b.days),
        "ext": {
            "pacing": {
                "pacing_index": b.pacing_index,
                "flight_progress": round(b.flight_progress, 4),
                "alerts": [alert(a) for a in b.alerts],
            },
            "delivery_sources": sorted({s for pr in b.packages for s in pr.sources}),
        },
    }
    if len(models) == 1:
        out["pricing_model"] = models.pop()
    if granularity is not None:
        out["windows"] = windows(b, report.start, report.end, granularity)
    return out


def delivery_payload(
    report: DeliveryReport, *, include_package_daily: bool, granularity: str | None
) -> dict[str, Any]:
    total = Totals()
    for b in report.buys:
        total.add(b.period)
    return {
        "reporting_period": period(report.start, report.end),
        "currency": report.currency,
        "aggregated_totals": {
            "impressions": total.impressions,
            "spend": round(total.spend, 2),
            "clicks": total.clicks,
            "completed_views": total.completions,
            **{
                k: v
                for k, v in conversion_metrics(
                    [pr.conversions for b in report.buys for pr in b.packages], total.spend
                ).items()
                if k in ("conversions", "conversion_value", "roas", "cost_per_acquisition")
            },
            "media_buy_count": len(report.buys),
        },
        "media_buy_deliveries": [
            buy_row(b, report, include_package_daily, granularity) for b in report.buys
        ],
    }
