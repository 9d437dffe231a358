"""Sandbox delivery: ``simulate_delivery`` and ``simulate_budget_spend``.

Both write ``delivery_hours`` rows with their own source (``delivery.SANDBOX`` and
``delivery.SANDBOX_BUDGET``), in the last complete hour, so every reader — delivery
reports, pacing, the simulator's budget accounting — sees them like any other delivery
and ``ext.delivery_sources`` says where they came from. The simulator is caught up first,
and spend is capped by what each package has left: a simulation never overspends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.clock import floor_hour
from adcp_agent.db.models_delivery import DeliveryHour
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, delivery
from adcp_agent.services.delivery_sim import HOUR
from adcp_agent.services.sandbox import ControllerError, Scope
from adcp_agent.services.sandbox_status import buy_status

DELIVERING = ("live", "paused")


@dataclass(frozen=True)
class Metrics:
    impressions: int = 0
    clicks: int = 0
    spend: float = 0.0


@dataclass(frozen=True)
class DeliveryOutcome:
    currency: str
    simulated: Metrics
    cumulative: Metrics
    capped: bool


@dataclass(frozen=True)
class SpendOutcome:
    spend_percentage: float
    computed_spend: float
    budget: float
    currency: str
    reached_percentage: float


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` in whole units, proportional to ``weights`` (largest remainder)."""
    whole = sum(weights) or 1.0
    exact = [total * w / whole for w in weights]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: exact[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _floor4(value: float) -> float:
    return math.floor(max(value, 0.0) * 10_000) / 10_000


def _cost(package: Package, impressions: int, clicks: int) -> float:
    """What the buyer pays for these units under the package's pricing model."""
    if package.pricing_model == "cpc":
        return clicks * package.rate
    if package.pricing_model == "flat_rate":
        return 0.0
    return impressions * package.rate / 1000


async def _prepared(scope: Scope, media_buy_id: str) -> tuple[MediaBuy, list[Package], datetime]:
    """The buy (delivering), its packages, and the hour sandbox rows go in, with the
    simulator caught up so the budget left is current."""
    buy = await scope.buy(media_buy_id)
    if buy.state not in DELIVERING or buy.archived:
        status = buy_status(buy, scope)
        raise ControllerError(
            "INVALID_STATE",
            f"Media buy {media_buy_id} is {status}; only booked buys deliver.",
            current_state=status,
        )
    now = scope.state.clock.now()
    await delivery.catch_up(scope.state, buy, now)
    async with scope.state.db.reading() as session:
        packages = list(
            (
                await session.exec(
                    select(Package)
                    .where(Package.media_buy_id == media_buy_id)
                    .order_by(col(Package.created_at), col(Package.package_id))
                )
            ).all()
        )
    return buy, packages, floor_hour(now) - HOUR


async def _spent(
    session: AsyncSession, media_buy_id: str, *, except_source: str | None = None
) -> dict[str, float]:
    stmt = select(DeliveryHour.package_id, func.sum(DeliveryHour.spend)).where(
        DeliveryHour.media_buy_id == media_buy_id
    )
    if except_source is not None:
        stmt = stmt.where(DeliveryHour.source != except_source)
    rows = await session.exec(stmt.group_by(DeliveryHour.package_id))
    return {pid: float(total or 0.0) for pid, total in rows.all()}


async def _add_row(
    session: AsyncSession, buy: MediaBuy, package_id: str, hour: datetime, source: str, m: Metrics
) -> None:
    row = (
        await session.exec(
            select(DeliveryHour).where(
                DeliveryHour.package_id == package_id,
                DeliveryHour.hour == hour,
                DeliveryHour.source == source,
            )
        )
    ).first()
    if row is None:
        row = DeliveryHour(
            tenant_id=buy.tenant_id,
            media_buy_id=buy.media_buy_id,
            package_id=package_id,
            hour=hour,
            source=source,
        )
    row.impressions += m.impressions
    row.clicks += m.clicks
    row.spend = round(row.spend + m.spend, 4)
    row.updated_at = utcnow()
    session.add(row)


async def simulate_delivery(
    scope: Scope,
    media_buy_id: str,
    *,
    impressions: int = 0,
    clicks: int = 0,
    spend: float | None = None,
    currency: str | None = None,
) -> DeliveryOutcome:
    """Record delivery for a buy, split across its packages by budget. Without a
    reported spend, spend follows each package's price; either way it stops at what
    the package has left. Each call adds to the previous ones."""
    buy, packages, hour = await _prepared(scope, media_buy_id)
    if currency is not None and currency != buy.currency:
        raise ControllerError(
            "INVALID_PARAMS", f"reported_spend is in {currency}; the buy is in {buy.currency}."
        )
    weights = [p.budget for p in packages]
    imps, clks = _split(impressions, weights), _split(clicks, weights)
    total_budget = sum(weights) or 1.0
    added: list[Metrics] = []
    capped = False
    async with scope.state.db.transaction() as session:
        spent = await _spent(session, media_buy_id)
        for i, package in enumerate(packages):
            wanted = (
                spend * package.budget / total_budget
                if spend is not None
                else _cost(package, imps[i], clks[i])
            )
            left = package.budget - spent.get(package.package_id, 0.0)
            paid = _floor4(min(wanted, left))
            capped = capped or paid + 0.0001 < _floor4(wanted)
            m = Metrics(imps[i], clks[i], paid)
            added.append(m)
            if m.impressions or m.clicks or m.spend:
                await _add_row(session, buy, package.package_id, hour, delivery.SANDBOX, m)
        await session.flush()
        totals = (
            await session.exec(
                select(
                    func.coalesce(func.sum(DeliveryHour.impressions), 0),
                    func.coalesce(func.sum(DeliveryHour.clicks), 0),
                    func.coalesce(func.sum(DeliveryHour.spend), 0.0),
                ).where(
                    DeliveryHour.media_buy_id == media_buy_id,
                    DeliveryHour.source == delivery.SANDBOX,
                )
            )
        ).one()
        simulated = Metrics(
            sum(m.impressions for m in added),
            sum(m.clicks for m in added),
            round(sum(m.spend for m in added), 2),
        )
        await audit.record(
            session,
            scope.caller,
            "delivery.simulate",
            actor=scope.actor,
            target_type="media_buy",
            target_id=media_buy_id,
            after={"impressions": simulated.impressions, "clicks": simulated.clicks,
                   "spend": simulated.spend, "hour": hour.isoformat()},
        )  # fmt: skip
    cumulative = Metrics(int(totals[0]), int(totals[1]), round(float(totals[2]), 2))
    return DeliveryOutcome(buy.currency, simulated, cumulative, capped)


async def _spend_buy_to(scope: Scope, media_buy_id: str, percentage: float) -> tuple[float, float]:
    """Set the buy's SANDBOX_BUDGET rows so each package has spent ``percentage`` of its
    budget (never less than it already spent elsewhere). Returns (target, reached)."""
    buy, packages, hour = await _prepared(scope, media_buy_id)
    target_total = reached_total = 0.0
    async with scope.state.db.transaction() as session:
        others = await _spent(session, media_buy_id, except_source=delivery.SANDBOX_BUDGET)
        await session.exec(
            delete(DeliveryHour).where(
                col(DeliveryHour.media_buy_id) == media_buy_id,
                col(DeliveryHour.source) == delivery.SANDBOX_BUDGET,
            )
        )
        for package in packages:
            target = round(package.budget * percentage / 100, 4)
            other = others.get(package.package_id, 0.0)
            top_up = _floor4(target - other)
            target_total += target
            reached_total += other + top_up
            if top_up <= 0:
                continue
            units = int(top_up / package.rate * (1 if package.pricing_model == "cpc" else 1000))
            m = Metrics(
                impressions=0 if package.pricing_model == "cpc" else units,
                clicks=units if package.pricing_model == "cpc" else 0,
                spend=top_up,
            )
            await _add_row(session, buy, package.package_id, hour, delivery.SANDBOX_BUDGET, m)
        await audit.record(
            session,
            scope.caller,
            "delivery.simulate_budget_spend",
            actor=scope.actor,
            target_type="media_buy",
            target_id=media_buy_id,
            after={"spend_percentage": percentage, "spend": round(reached_total, 2)},
        )
    return target_total, reached_total


async def simulate_budget_spend(
    scope: Scope, percentage: float, *, media_buy_id: str | None, account_id: str | None
) -> SpendOutcome:
    """Drive spend to ``percentage`` of the budget of one buy, or of every delivering
    buy of a sandbox account. Repeating the call leaves the same spend."""
    if media_buy_id is not None:
        buy = await scope.buy(media_buy_id)
        buys = [buy]
    else:
        assert account_id is not None
        account = await scope.linked_account(account_id)
        async with scope.state.db.reading() as session:
            buys = list(
                (
                    await session.exec(
                        select(MediaBuy)
                        .where(
                            MediaBuy.account_id == account.account_id,
                            MediaBuy.principal_id == scope.principal_id,
                            col(MediaBuy.state).in_(DELIVERING),
                            MediaBuy.archived == False,  # noqa: E712
                        )
                        .order_by(col(MediaBuy.created_at), col(MediaBuy.media_buy_id))
                    )
                ).all()
            )
        if not buys:
            raise ControllerError(
                "NOT_FOUND", f"Account {account_id} has no booked media buys to spend on."
            )
    target = reached = budget = 0.0
    for buy in buys:
        try:
            t, r = await _spend_buy_to(scope, buy.media_buy_id, percentage)
        except AdcpError as exc:
            raise ControllerError("INTERNAL_ERROR", f"{exc.code}: {exc.message}") from exc
        target, reached, budget = target + t, reached + r, budget + buy.total_budget
    share = round(reached / budget * 100, 2) if budget else 0.0
    return SpendOutcome(percentage, round(target, 2), round(budget, 2), buys[0].currency, share)
