"""Real delivery events (impression, click and completion pixels or server-to-server
calls), deduplicated by event id and counted into the same hourly table the simulator
writes, as source ``tracking``.

Senders authenticate with the buy owner's token, exactly like MCP: the owner's
measurement stack (ad server, verification partner) reports for that owner's buys, and
every tenant and principal scoping rule applies unchanged. Once a package has received
real events it is measured by them: the simulator stops producing hours for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.clock import floor_hour
from adcp_agent.db.models import Product
from adcp_agent.db.models_delivery import DeliveryHour, TrackingEvent
from adcp_agent.db.models_media import Package
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import delivery, media_updates
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

Kind = Literal["impression", "click", "completion"]
KINDS: tuple[Kind, ...] = ("impression", "click", "completion")
FUTURE_SKEW = timedelta(minutes=5)  # sender clocks run a little fast
# Completions exist only where something plays to the end.
PLAYABLE_CHANNELS = frozenset({"ctv", "olv", "streaming_audio", "podcast"})
_COUNTER = {"impression": "impressions", "click": "clicks", "completion": "completions"}
# The pricing models whose billable unit each event is.
_BILLED_BY = {"impression": ("cpm", "vcpm"), "click": ("cpc",), "completion": ("cpcv", "cpv")}


@dataclass(frozen=True)
class EventIn:
    kind: Kind
    event_id: str
    media_buy_id: str
    package_id: str
    timestamp: datetime
    cost: float | None = None
    creative_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    event: TrackingEvent
    hour: datetime
    billed: float  # what counted against the budget (the cost, capped by what was left)


def default_cost(kind: Kind, package: Package) -> float:
    """The package's price for one billable unit, when the sender states no cost."""
    if package.pricing_model not in _BILLED_BY[kind]:
        return 0.0
    return package.rate / 1000 if kind == "impression" else package.rate


async def record(state: AppState, caller: Caller, event: EventIn) -> Recorded:
    buy, packages = await media_updates.load_buy(state, caller, event.media_buy_id, None)
    package = next((p for p in packages if p.package_id == event.package_id), None)
    if package is None:
        raise AdcpError(
            "PACKAGE_NOT_FOUND",
            f"Package '{event.package_id}' is not part of media buy '{buy.media_buy_id}'.",
            field="package_id",
        )
    if buy.state in ("pending_approval", "rejected"):
        raise AdcpError(
            "INVALID_STATE",
            f"Media buy '{buy.media_buy_id}' was never approved, so it cannot have delivered.",
            field="media_buy_id",
        )
    now = state.clock.now()
    if not buy.start_time <= event.timestamp < buy.end_time:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"The event at {event.timestamp.isoformat()} is outside the buy's flight "
            f"({buy.start_time.isoformat()} to {buy.end_time.isoformat()}).",
            field="timestamp",
        )
    if event.timestamp > now + FUTURE_SKEW:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"The event is timestamped in the future (now is {now.isoformat()}).",
            field="timestamp",
        )
    if event.kind == "completion":
        async with state.db.reading() as session:
            product = (
                await session.exec(
                    select(Product).where(
                        Product.tenant_id == buy.tenant_id,
                        Product.product_id == package.product_id,
                    )
                )
            ).first()
        if product is not None and not PLAYABLE_CHANNELS & set(product.channels):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Completions apply to video and audio; '{package.product_id}' is "
                f"{', '.join(product.channels)}.",
                field="kind",
            )
    cost = default_cost(event.kind, package) if event.cost is None else event.cost
    # Close the simulated hours first: from this event on the package is measured.
    await delivery.close_hours(state, buy, now)
    hour = floor_hour(event.timestamp)
    row = TrackingEvent(
        tenant_id=buy.tenant_id,
        principal_id=buy.principal_id,
        kind=event.kind,
        event_id=event.event_id,
        media_buy_id=buy.media_buy_id,
        package_id=package.package_id,
        creative_id=event.creative_id,
        occurred_at=event.timestamp,
        cost=0.0,
        event_metadata=event.metadata,
    )

    async def store(session: AsyncSession) -> float:
        session.add(row)
        await session.flush()  # a duplicate event id fails here, before anything counts
        spent = (
            await session.exec(
                select(func.coalesce(func.sum(DeliveryHour.spend), 0.0)).where(
                    DeliveryHour.package_id == package.package_id
                )
            )
        ).one()
        billed = round(max(0.0, min(cost, package.budget - float(spent))), 6)
        row.cost = billed
        session.add(row)
        await _count(session, buy.tenant_id, package, hour, event.kind, billed)
        return billed

    try:
        # Events arriving together share one durable commit, each in its own savepoint;
        # the answer comes only once its batch is committed.
        billed = await state.group_commit.run(store)
    except IntegrityError:
        raise AdcpError(
            "CONFLICT",
            f"The {event.kind} event '{event.event_id}' was already recorded.",
            field="event_id",
            details={"event_id": event.event_id, "kind": event.kind},
            http_status=409,
        ) from None
    return Recorded(row, hour, billed)


async def _count(
    session: AsyncSession,
    tenant_id: str,
    package: Package,
    hour: datetime,
    kind: Kind,
    billed: float,
) -> None:
    """Add one event to the package's tracked hour: one upsert, so two processes
    counting the hour's first events at once both add to one row (an update-then-insert
    let the second insert collide and answer 409 for an event never seen)."""
    counter = _COUNTER[kind]
    table = DeliveryHour.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgres_insert
    now = utcnow()
    row = {"impressions": 0, "clicks": 0, "completions": 0, counter: 1}
    stmt = insert(table).values(
        tenant_id=tenant_id,
        media_buy_id=package.media_buy_id,
        package_id=package.package_id,
        hour=hour,
        source=delivery.TRACKING,
        spend=billed,
        updated_at=now,
        **row,
    )
    await session.exec(
        stmt.on_conflict_do_update(  # type: ignore[call-overload]
            index_elements=["package_id", "hour", "source"],
            set_={
                counter: table.c[counter] + 1,
                "spend": table.c.spend + billed,
                "updated_at": now,
            },
        )
    )
