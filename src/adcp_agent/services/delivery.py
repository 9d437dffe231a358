"""Materialising delivery into ``delivery_hours``, lazily, up to the clock's "now".

- Buys on the mock ad server are simulated (``delivery_sim``) hour by hour, up to the
  last complete hour. ``delivery_watermarks`` records how far each buy is final, so an
  hour is computed exactly once however many readers (or restarts) there are.
- Buys on a real ad server take the adapter's daily report instead (rows at each day's
  first hour, source ``adapter``), refreshed at most every ``ADAPTER_REFRESH``.
- Real tracking events are added by ``services.tracking`` (source ``tracking``); a
  package that receives them is measured by them and is no longer simulated.

Catch-up runs before every read; ``close_hours`` runs before every change to how a buy
delivers (updates, approval, feedback, tracking), so a change applies from that moment
on and never rewrites the past. Each catch-up also refreshes the buy's pacing alert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.clock import floor_hour
from adcp_agent.db.id_lists import ByIds
from adcp_agent.db.models import Product, Signal, Tenant
from adcp_agent.db.models_delivery import DeliveryHour, DeliveryWatermark, PerformanceFeedback
from adcp_agent.db.models_media import MediaBuy, Package, package_flight
from adcp_agent.db.types import chunked, utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    audience_targeting,
    audiences,
    catalog,
    media_reads,
    optimisation,
    optimization_goals,
    pacing,
)
from adcp_agent.services import targeting as targeting_rules
from adcp_agent.services.adapters import MOCK
from adcp_agent.services.creative_state import deliverable_package_ids
from adcp_agent.services.delivery_sim import (
    HOUR,
    PackageModel,
    Progress,
    clearing_price,
    device_mix,
    simulate_hour,
)
from adcp_agent.state import AppState

log = logging.getLogger(__name__)

SIMULATOR, TRACKING, ADAPTER = "simulator", "tracking", "adapter"
# Rows injected by comply_test_controller (services.sandbox_delivery): simulate_delivery
# adds to SANDBOX, simulate_budget_spend sets SANDBOX_BUDGET to reach a spend level.
SANDBOX, SANDBOX_BUDGET = "sandbox", "sandbox_budget"
ADAPTER_REFRESH = timedelta(minutes=15)


_MARKS = DeliveryWatermark.__table__  # type: ignore[attr-defined]
_WATERMARKS_OF = ByIds(lambda in_ids: core_select(_MARKS).where(in_ids(_MARKS.c.media_buy_id)))


class _Raced(Exception):
    """Another catch-up moved the watermark first; its rows stand."""


def ceil_hour(value: datetime) -> datetime:
    floored = floor_hour(value)
    return floored if floored == value else floored + HOUR


async def catch_up(state: AppState, buy: MediaBuy, now: datetime | None = None) -> None:
    """Bring the buy's delivery up to ``now`` (the clock's, by default)."""
    now = now or state.clock.now()
    if buy.state == "provisioning":
        return
    if buy.ad_server == MOCK:
        await _simulate(state, buy, now)
    else:
        await _sync_adapter(state, buy, now)


async def catch_up_many(
    state: AppState, buys: Sequence[MediaBuy], now: datetime
) -> list[tuple[MediaBuy, AdcpError]]:
    """``catch_up`` for many buys (a report over all of a buyer's buys): one query of
    the watermarks finds the buys already up to date, the rest catch up one by one.
    Returns the buys whose ad server could not be reached, with the error."""
    # Buys that could be behind whatever their watermark says (not before their start).
    ids = [b.media_buy_id for b in buys if _behind(b, None, now)]
    candidates = set(ids)
    marks: dict[str, DeliveryWatermark] = {}  # read-only rows
    for part in chunked(ids):  # no query at all when none could be behind
        for mark in await state.db.read(*_WATERMARKS_OF.bind(part)):
            marks[mark.media_buy_id] = mark
    failed: list[tuple[MediaBuy, AdcpError]] = []
    for buy in buys:
        if buy.media_buy_id not in candidates:
            continue
        if not _behind(buy, marks.get(buy.media_buy_id), now):
            continue
        try:
            await catch_up(state, buy, now)
        except AdcpError as exc:
            failed.append((buy, exc))
    return failed


def _behind(buy: MediaBuy, mark: DeliveryWatermark | None, now: datetime) -> bool:
    """Whether ``catch_up`` has anything to do for the buy (the same tests it makes)."""
    if buy.state == "provisioning":
        return False
    if buy.ad_server == MOCK:
        upto = min(floor_hour(now), ceil_hour(buy.end_time))
        begin = mark.materialised_until if mark else floor_hour(buy.start_time)
        return begin < upto
    if not buy.external_order_id or now < buy.start_time:
        return False
    synced = mark.adapter_synced_at if mark else None
    return synced is None or now - synced >= ADAPTER_REFRESH


async def close_hours(state: AppState, buy: MediaBuy, now: datetime | None = None) -> None:
    """Before a change to how a buy delivers (update, approval, feedback, tracking,
    creative approval): simulate the hours that ran under the old state, so the change
    applies from now on. Ad-server buys need nothing: the ad server keeps its history."""
    if buy.ad_server == MOCK and buy.state != "provisioning":
        await _simulate(state, buy, now or state.clock.now())


async def close_hours_of(state: AppState, media_buy_id: str) -> None:
    """``close_hours`` by id, for services that hold no buy row (e.g. creatives)."""
    found = await state.db.read_models(MediaBuy, media_reads.BUY_ROW, {"buy": media_buy_id})
    if found:
        await close_hours(state, found[0])


async def catch_up_all(state: AppState, now: datetime) -> int:
    """Every running simulated buy, across tenants (the simulated clock is global)."""
    async with state.db.reading() as session:
        buys = (
            await session.exec(
                select(MediaBuy).where(
                    MediaBuy.state == "live",
                    MediaBuy.ad_server == MOCK,
                    MediaBuy.start_time < now,
                )
            )
        ).all()
    for buy in buys:
        await catch_up(state, buy, now)
    return len(buys)


@dataclass
class _Context:
    packages: list[Package]
    products: dict[str, Product]
    coverage: dict[str, float]
    deliverable: set[str]
    tracked: set[str]
    feedback: list[PerformanceFeedback]
    progress: dict[str, Progress]


async def _packages(session: AsyncSession, media_buy_id: str) -> list[Package]:
    return list(
        (
            await session.exec(
                select(Package)
                .where(Package.media_buy_id == media_buy_id)
                .order_by(col(Package.created_at), col(Package.package_id))
            )
        ).all()
    )


async def _context(session: AsyncSession, buy: MediaBuy, begin: datetime) -> _Context:
    packages = await _packages(session, buy.media_buy_id)
    ids = [p.package_id for p in packages]
    products = await catalog.products_by_id(
        session, buy.tenant_id, [p.product_id for p in packages]
    )
    coverage = {
        s.signal_id: s.coverage_percentage
        for s in (await session.exec(select(Signal).where(Signal.tenant_id == buy.tenant_id)))
    }
    if any(any(audiences.in_overlay(p.targeting)) for p in packages):
        coverage |= await audience_targeting.coverage(session, buy.tenant_id, buy.account_id)
    of_buy = DeliveryHour.media_buy_id == buy.media_buy_id
    tracked = set(
        (
            await session.exec(
                select(DeliveryHour.package_id).where(of_buy, DeliveryHour.source == TRACKING)
            )
        ).all()
    )
    feedback = list(
        (
            await session.exec(
                select(PerformanceFeedback)
                .where(PerformanceFeedback.media_buy_id == buy.media_buy_id)
                .order_by(col(PerformanceFeedback.received_at))
            )
        ).all()
    )
    progress = {pid: Progress(day=begin.date()) for pid in ids}
    day_start = begin.replace(hour=0)
    spent = func.coalesce(func.sum(DeliveryHour.spend), 0.0)
    totals = await session.exec(
        select(DeliveryHour.package_id, spent, func.coalesce(func.sum(DeliveryHour.impressions), 0))
        .where(of_buy, DeliveryHour.hour < begin)
        .group_by(DeliveryHour.package_id)
    )
    for pid, spend, impressions in totals.all():
        progress[pid].spend, progress[pid].impressions = float(spend), int(impressions)
    today = await session.exec(
        select(DeliveryHour.package_id, spent)
        .where(of_buy, DeliveryHour.hour >= day_start, DeliveryHour.hour < begin)
        .group_by(DeliveryHour.package_id)
    )
    for pid, spend in today.all():
        progress[pid].day_spend = float(spend)
    deliverable = await deliverable_package_ids(session, ids)
    return _Context(packages, products, coverage, deliverable, tracked, feedback, progress)


# Devices shape the traffic mix and daypart targets the hours served, instead.
_SHAPING_KEYS = ("device_type", "device_type_exclude", "daypart_targets")


def floor_of(product: Product, package: Package) -> float | None:
    """The auction floor of the package's pricing option; None for fixed prices."""
    if package.guaranteed:
        return None
    for option in product.pricing_options:
        if option["pricing_option_id"] == package.pricing_option_id:
            floor = option.get("floor_price")
            return float(floor) if floor is not None else None
    return None


def package_model(
    buy: MediaBuy, package: Package, product: Product, coverage: dict[str, float]
) -> PackageModel:
    inventory = product.inventory
    overlay = {k: v for k, v in package.targeting.items() if k not in _SHAPING_KEYS}
    breadth = targeting_rules.reach_factor(overlay, product, coverage)
    supply = float(inventory.get("daily_impressions", 0)) * float(inventory.get("fill_rate", 1.0))
    floor = floor_of(product, package)
    # The primary optimization goal shifts the rates, and the reach given up for them.
    paid = package.rate if floor is None else clearing_price(package.rate, floor)
    shaped = optimization_goals.shape(
        optimization_goals.primary(package.optimization_goals),
        optimization_goals.Shaped(
            ctr=float(inventory.get("ctr", 0.0)),
            viewability=float(inventory.get("viewability", 1.0)),
            completion_rate=float(inventory.get("completion_rate", 0.0)),
        ),
        paid if package.pricing_model in ("cpm", "vcpm") else 0.0,
    )
    day_cap = None
    if buy.daily_cap is not None and buy.total_budget > 0:
        day_cap = buy.daily_cap * package.budget / buy.total_budget
    return PackageModel(
        package_id=package.package_id,
        guaranteed=package.guaranteed,
        pricing_model=package.pricing_model,
        rate=package.rate,
        floor=floor,
        budget=package.budget,
        # A fixed-price goal is contracted; an auction's implied goal (budget ÷ bid) is
        # what the budget buys at the most it pays, so only the budget binds there.
        impressions_goal=package.impressions_goal if floor is None else None,
        pacing=package.pacing,
        daily_impressions=supply * breadth * shaped.supply,
        devices=device_mix(
            product.channels,
            package.targeting.get("device_type"),
            package.targeting.get("device_type_exclude"),
        ),
        bid_adjustments=dict(package.bid_adjustments),
        ctr=shaped.ctr,
        completion_rate=shaped.completion_rate,
        viewability=shaped.viewability,
        day_cap=day_cap,
        week_hours=pacing.week_hours(package.targeting),
    )


def _run(buy: MediaBuy, ctx: _Context, begin: datetime, upto: datetime) -> list[DeliveryHour]:
    models = {
        p.package_id: package_model(buy, p, ctx.products[p.product_id], ctx.coverage)
        for p in ctx.packages
        if not p.paused
        and p.package_id in ctx.deliverable
        and p.package_id not in ctx.tracked
        and p.product_id in ctx.products
    }
    # Noise is seeded from what the buyer asked for, not from generated ids, so the same
    # journey replays to the same numbers (simulations, benchmarks, bug reports).
    stable = {
        p.package_id: (
            f"{buy.tenant_id}|{buy.buyer_ref or ''}|{buy.start_time:%Y%m%dT%H%M}|"
            f"{p.product_id}|{p.pricing_option_id}|{p.budget}|{p.rate}|{p.buyer_ref or ''}"
        )
        for p in ctx.packages
    }
    # A package with a flight of its own (or added mid-flight) delivers within it.
    flights = {p.package_id: package_flight(p, buy) for p in ctx.packages}
    rows: list[DeliveryHour] = []
    hour = begin
    while hour < upto:
        weight = optimisation.weights(ctx.packages, ctx.feedback, hour)
        for pid, model in models.items():
            progress = ctx.progress[pid]
            out = simulate_hour(
                model,
                progress,
                hour=hour,
                start=flights[pid][0],
                end=flights[pid][1],
                seed=f"{stable[pid]}|{hour:%Y-%m-%dT%H}",
                weight=weight.get(pid, 1.0),
            )
            progress.add(hour, out)
            if out.impressions:
                rows.append(
                    DeliveryHour(
                        tenant_id=buy.tenant_id,
                        media_buy_id=buy.media_buy_id,
                        package_id=pid,
                        hour=hour,
                        source=SIMULATOR,
                        impressions=out.impressions,
                        clicks=out.clicks,
                        completions=out.completions,
                        spend=out.spend,
                    )
                )
        hour += HOUR
    return rows


async def _simulate(state: AppState, buy: MediaBuy, now: datetime) -> None:
    upto = min(floor_hour(now), ceil_hour(buy.end_time))
    if floor_hour(buy.start_time) >= upto:
        return  # not started: nothing to materialise (the watermark is never earlier)
    async with state.db.reading() as session:
        mark = await session.get(DeliveryWatermark, buy.media_buy_id)
        begin = mark.materialised_until if mark else floor_hour(buy.start_time)
        if begin >= upto:
            return
        ctx = await _context(session, buy, begin)
    # Hours while the buy was not live (awaiting approval, paused, ended) close empty.
    rows = _run(buy, ctx, begin, upto) if buy.state == "live" else []
    spent = {pid: p.spend for pid, p in ctx.progress.items()}
    floors = {
        p.package_id: f
        for p in ctx.packages
        if p.product_id in ctx.products and (f := floor_of(ctx.products[p.product_id], p))
    }
    verdict = pacing.assess(buy, ctx.packages, spent, ctx.deliverable, min(upto, now), floors)
    try:
        async with state.db.transaction() as session:
            await _move_mark(session, buy, mark.materialised_until if mark else None, upto)
            session.add_all(rows)
            if verdict is not None:
                await pacing.record_alert(session, buy, verdict, now)
    except (_Raced, IntegrityError):
        log.debug("delivery of %s was materialised concurrently", buy.media_buy_id)


async def _move_mark(
    session: AsyncSession, buy: MediaBuy, old: datetime | None, new: datetime
) -> None:
    """Advance the watermark from ``old``; fails if someone else already moved it."""
    if old is None:
        session.add(
            DeliveryWatermark(
                media_buy_id=buy.media_buy_id, tenant_id=buy.tenant_id, materialised_until=new
            )
        )
        await session.flush()
        return
    result = await session.exec(
        update(DeliveryWatermark)
        .where(
            col(DeliveryWatermark.media_buy_id) == buy.media_buy_id,
            col(DeliveryWatermark.materialised_until) == old,
        )
        .values(materialised_until=new, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _Raced


async def _sync_adapter(state: AppState, buy: MediaBuy, now: datetime) -> None:
    """Replace the buy's ``adapter`` rows with the ad server's current daily report."""
    if not buy.external_order_id or now < buy.start_time:
        return
    async with state.db.reading() as session:
        mark = await session.get(DeliveryWatermark, buy.media_buy_id)
        if mark and mark.adapter_synced_at and now - mark.adapter_synced_at < ADAPTER_REFRESH:
            return
        tenant = await session.get(Tenant, buy.tenant_id)
        packages = await _packages(session, buy.media_buy_id)
        deliverable = await deliverable_package_ids(session, [p.package_id for p in packages])
    assert tenant is not None
    adapter = state.adapters.get(tenant, buy.ad_server)
    reported = await adapter.get_delivery(
        buy.external_order_id, buy.start_time.date(), min(now, buy.end_time).date()
    )
    by_line = {p.external_line_id: p.package_id for p in packages if p.external_line_id}
    days: dict[tuple[str, datetime], list[float]] = {}
    for row in reported:
        pid = by_line.get(row.external_line_id)
        if pid is None:
            log.warning("%s reported unknown line %s", buy.ad_server, row.external_line_id)
            continue
        key = (pid, datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC))
        sums = days.setdefault(key, [0, 0, 0, 0.0])
        for i, value in enumerate((row.impressions, row.clicks, row.completions, row.spend)):
            sums[i] += value
    async with state.db.transaction() as session:
        await _upsert_mark(session, buy, now)
        for (pid, day), (imps, clicks, completions, spend) in days.items():
            await _upsert_adapter_row(session, buy, pid, day, imps, clicks, completions, spend)
        await session.flush()
        spent = await spend_by_package(session, [buy.media_buy_id])
        verdict = pacing.assess(buy, packages, spent, deliverable, now, {})
        if verdict is not None:
            await pacing.record_alert(session, buy, verdict, now)


async def _upsert_mark(session: AsyncSession, buy: MediaBuy, now: datetime) -> None:
    values = {"adapter_synced_at": now, "materialised_until": floor_hour(now)}
    result = await session.exec(
        update(DeliveryWatermark)
        .where(col(DeliveryWatermark.media_buy_id) == buy.media_buy_id)
        .values(**values, updated_at=utcnow())
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(
            DeliveryWatermark(media_buy_id=buy.media_buy_id, tenant_id=buy.tenant_id, **values)
        )


async def _upsert_adapter_row(
    session: AsyncSession,
    buy: MediaBuy,
    package_id: str,
    day: datetime,
    impressions: float,
    clicks: float,
    completions: float,
    spend: float,
) -> None:
    values = {
        "impressions": int(impressions),
        "clicks": int(clicks),
        "completions": int(completions),
        "spend": round(float(spend), 4),
    }
    result = await session.exec(
        update(DeliveryHour)
        .where(
            col(DeliveryHour.package_id) == package_id,
            col(DeliveryHour.hour) == day,
            col(DeliveryHour.source) == ADAPTER,
        )
        .values(**values, updated_at=utcnow())
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(
            DeliveryHour(
                tenant_id=buy.tenant_id,
                media_buy_id=buy.media_buy_id,
                package_id=package_id,
                hour=day,
                source=ADAPTER,
                **values,
            )
        )


async def spend_by_package(session: AsyncSession, media_buy_ids: Sequence[str]) -> dict[str, float]:
    rows = await session.exec(
        select(DeliveryHour.package_id, func.sum(DeliveryHour.spend))
        .where(col(DeliveryHour.media_buy_id).in_(list(media_buy_ids)))
        .group_by(DeliveryHour.package_id)
    )
    return {pid: float(total or 0.0) for pid, total in rows.all()}
