"""The outbox as admins see it: events with their deliveries (newest first, cursor
pages, filtered by tenant, status and type), and re-queuing dead letters."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models_events import EventDelivery, OutboxEvent
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, paging, tenant_admin
from adcp_agent.services.paging import Page, PageRequest

EventStatus = Literal["pending", "delivered", "dead"]


class EventQuery(PageRequest):
    tenant_id: str | None = None
    status: EventStatus | None = None
    event_type: str | None = None
    media_buy_id: str | None = None


async def list_events(
    db: Database, query: EventQuery
) -> tuple[Page[OutboxEvent], dict[str, list[EventDelivery]]]:
    stmt = select(OutboxEvent)
    if query.tenant_id is not None:
        stmt = stmt.where(OutboxEvent.tenant_id == query.tenant_id)
    if query.status is not None:
        stmt = stmt.where(OutboxEvent.status == query.status)
    if query.event_type is not None:
        stmt = stmt.where(OutboxEvent.event_type == query.event_type)
    if query.media_buy_id is not None:
        stmt = stmt.where(OutboxEvent.media_buy_id == query.media_buy_id)
    if query.cursor:
        position = paging.decode_cursor("events", query.cursor)
        stmt = stmt.where(
            paging.after(OutboxEvent.created_at, OutboxEvent.event_id, position, descending=True)
        )
    stmt = stmt.order_by(col(OutboxEvent.created_at).desc(), col(OutboxEvent.event_id).desc())
    async with db.reading() as session:
        rows = list((await session.exec(stmt.limit(query.limit + 1))).all())
        page = paging.build_page(rows, query.limit, "events", lambda e: (e.created_at, e.event_id))
        by_event = await _deliveries(session, [e.event_id for e in page.items])
    return page, by_event


async def _deliveries(
    session: AsyncSession, event_ids: list[str]
) -> dict[str, list[EventDelivery]]:
    out: dict[str, list[EventDelivery]] = defaultdict(list)
    if not event_ids:
        return out
    rows = await session.exec(
        select(EventDelivery)
        .where(col(EventDelivery.event_id).in_(event_ids))
        .order_by(col(EventDelivery.created_at), col(EventDelivery.delivery_id))
    )
    for row in rows.all():
        out[row.event_id].append(row)
    return out


async def get_event(db: Database, event_id: str) -> tuple[OutboxEvent, list[EventDelivery]]:
    async with db.reading() as session:
        event = await session.get(OutboxEvent, event_id)
        if event is None:
            raise AdcpError("NOT_FOUND", f"Event '{event_id}' was not found.", field="event_id")
        found = await _deliveries(session, [event_id])
    return event, found.get(event_id, [])


async def retry_event(
    db: Database, event_id: str, *, actor: str = tenant_admin.ACTOR
) -> tuple[OutboxEvent, list[EventDelivery]]:
    """Give every dead delivery of the event a fresh set of attempts, due now."""
    now = utcnow()
    async with db.transaction() as session:
        event = await session.get(OutboxEvent, event_id)
        if event is None:
            raise AdcpError("NOT_FOUND", f"Event '{event_id}' was not found.", field="event_id")
        if event.status != "dead":
            raise AdcpError(
                "INVALID_STATE",
                f"Event '{event_id}' is {event.status}; only dead events can be retried.",
                field="event_id",
                details={"status": event.status},
            )
        await session.exec(
            update(EventDelivery)
            .where(col(EventDelivery.event_id) == event_id, col(EventDelivery.status) == "dead")
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )
        event.status = "pending"
        event.updated_at = now
        session.add(event)
        await audit.record(
            session,
            None,
            "event.retry",
            actor=actor,
            tenant_id=event.tenant_id,
            target_type="event",
            target_id=event_id,
        )
    return await get_event(db, event_id)
