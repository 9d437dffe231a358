"""The transactional outbox: events are rows written by the transaction that makes the
change, so there is never an event without its change nor a change without its event.

``emit`` also fans the event out, in the same transaction, into one ``EventDelivery``
per destination (matching tenant webhooks, the tenant's Slack channel, the buyer's AdCP
push registration for the buy) and an email draft for media-buy events. The delivery
worker (``services.outbox_worker``) sends them later, with retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import and_, col, select

from adcp_agent.db import statements
from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_events import (
    EventDelivery,
    NotificationDraft,
    OutboxEvent,
    PushNotificationRegistration,
    WebhookEndpoint,
)
from adcp_agent.db.models_media import MediaBuy, Package
from adcp_agent.db.statements import Tx
from adcp_agent.db.types import utcnow
from adcp_agent.services import buy_state
from adcp_agent.services.identity import new_id

EVENT_TYPES: tuple[str, ...] = (
    "media_buy.created",
    "media_buy.approval_required",
    "config_approval_required",
    "media_buy.approved",
    "media_buy.rejected",
    "media_buy.failed",
    "media_buy.activated",
    "creative.approved",
    "creative.rejected",
    "campaign.completed",
)
# The buyer already had the synchronous answer for created/approval_required; push
# notifications report what changed after it (AdCP: "status changes after submission").
PUSH_EVENTS = frozenset(
    {
        "media_buy.approved",
        "media_buy.rejected",
        "media_buy.activated",
        "media_buy.failed",
        "campaign.completed",
        "creative.approved",
        "creative.rejected",
    }
)
CREATIVE_PUSH_EVENTS = frozenset({"creative.approved", "creative.rejected"})
DRAFT_EVENTS = frozenset(t for t in EVENT_TYPES if t.startswith(("media_buy.", "campaign.")))
SLACK_FEATURE = "slack_webhook_url"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an event payload")


def new_event_id() -> str:
    """36 characters of ``[a-z0-9_]``: also valid as an AdCP webhook idempotency_key."""
    return "evt_" + uuid.uuid4().hex


async def emit(
    session: Tx,
    *,
    tenant_id: str,
    event_type: str,
    payload: dict[str, Any],
    principal_id: str | None = None,
    media_buy_id: str | None = None,
    dedupe_key: str | None = None,
    destinations: Sequence[Any] | None = None,
) -> OutboxEvent:
    """Record ``event_type`` in the caller's open transaction (call it inside
    ``async with db.transaction() as session``, next to the change it reports; the
    event commits or rolls back with it).

    - ``event_type``: one of ``EVENT_TYPES`` (e.g. ``"creative.approved"``).
    - ``payload``: the event's ``data`` as receivers see it — JSON values; datetimes
      are converted to ISO 8601 UTC. Never put secrets in it: every matching webhook
      and the Slack channel receive it. Creative events should carry ``creative_id``,
      ``principal_id`` and, for rejections, ``reason``.
    - ``principal_id``: the buyer the event concerns (push registrations and draft
      access are scoped by it).
    - ``media_buy_id``: the buy it concerns, if any (push notifications, email draft).
    - ``dedupe_key``: for events that must exist once (a duplicate raises
      IntegrityError).
    - ``destinations``: the tenant's webhooks and features as ``destinations`` read
      them just before the transaction (it then reads them no more: on PostgreSQL a
      round trip fewer inside it); read in ``session`` when not given.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; add it to EVENT_TYPES")
    now = utcnow()
    event = statements.build(
        OutboxEvent,
        event_id=new_event_id(),
        tenant_id=tenant_id,
        event_type=event_type,
        status="pending",
        principal_id=principal_id,
        media_buy_id=media_buy_id,
        dedupe_key=dedupe_key,
        payload=json.loads(json.dumps(payload, default=_jsonable)),
        created_at=now,
        updated_at=now,
    )
    deliveries = await _destinations(session, event, destinations)
    if not deliveries:
        event.status = "delivered"  # nobody to tell: nothing is outstanding
    # After the lookups, inserted once with its final status; before the rows that
    # reference it.
    await statements.insert(session, event)
    await statements.insert(session, *deliveries)
    if media_buy_id and event_type in DRAFT_EVENTS:
        draft = statements.build(
            NotificationDraft,
            draft_id=new_id("draft"),
            tenant_id=tenant_id,
            principal_id=principal_id,
            media_buy_id=media_buy_id,
            event_id=event.event_id,
            event_type=event_type,
        )
        await statements.insert(session, draft)
    return event


def delivery_for(
    event: OutboxEvent, channel: str, url: str, target_id: str | None
) -> EventDelivery:
    """A pending delivery of ``event`` to one destination, due when the event was made."""
    return statements.build(
        EventDelivery,
        delivery_id=new_id("dlv"),
        event_id=event.event_id,
        tenant_id=event.tenant_id,
        channel=channel,
        target_id=target_id,
        url=url,
        status="pending",
        next_attempt_at=event.created_at,
    )


# Every event looks these up: built once (building and cache-keying them per call cost
# more than running them). The tenant's webhooks and its features (the Slack channel)
# in one statement: a row per live webhook, or one row without a webhook.
_DESTINATIONS = (
    select(Tenant.features, WebhookEndpoint.webhook_id, WebhookEndpoint.url, WebhookEndpoint.events)
    .select_from(Tenant)
    .outerjoin(
        WebhookEndpoint,
        and_(
            col(WebhookEndpoint.tenant_id) == col(Tenant.tenant_id),
            col(WebhookEndpoint.deleted_at).is_(None),
        ),
    )
    .where(Tenant.tenant_id == bindparam("tenant"))
)
_REGISTRATION = (
    select(PushNotificationRegistration)
    .where(
        PushNotificationRegistration.media_buy_id == bindparam("media_buy"),
        PushNotificationRegistration.tenant_id == bindparam("tenant"),
    )
    .order_by(col(PushNotificationRegistration.created_at).desc())
    .limit(1)
)

# A buyer's sync_creatives configs, newest first (a review decision goes to the latest
# covering its creative; older ones are kept for the deliveries made to them).
_SYNC_REGISTRATIONS = (
    select(
        PushNotificationRegistration.config_id,
        PushNotificationRegistration.url,
        PushNotificationRegistration.creative_ids,
    )
    .where(
        PushNotificationRegistration.principal_id == bindparam("principal"),
        PushNotificationRegistration.tenant_id == bindparam("tenant"),
        col(PushNotificationRegistration.media_buy_id).is_(None),
    )
    .order_by(col(PushNotificationRegistration.created_at).desc())
    .limit(50)
)


async def destinations(db: Database, tenant_id: str) -> Sequence[Any]:
    """The tenant's live webhooks and its features, for ``emit(destinations=...)``."""
    return await db.read(_DESTINATIONS, {"tenant": tenant_id})


async def _destinations(
    session: Tx, event: OutboxEvent, rows: Sequence[Any] | None = None
) -> list[EventDelivery]:
    out: list[EventDelivery] = []
    if rows is None:
        rows = await statements.fetch(session, _DESTINATIONS, {"tenant": event.tenant_id})
    for row in rows:
        if row.webhook_id is not None and (not row.events or event.event_type in row.events):
            out.append(delivery_for(event, "webhook", row.url, row.webhook_id))
    slack_url = (rows[0].features if rows else {}).get(SLACK_FEATURE)
    if isinstance(slack_url, str) and slack_url:
        out.append(delivery_for(event, "slack", slack_url, None))
    if event.media_buy_id and event.event_type in PUSH_EVENTS:
        params = {"media_buy": event.media_buy_id, "tenant": event.tenant_id}
        registrations = await statements.fetch(session, _REGISTRATION, params)
        if registrations:  # the latest, registered by the buy's own principal
            latest = registrations[0]
            out.append(delivery_for(event, "push", latest.url, latest.config_id))
    elif event.event_type in CREATIVE_PUSH_EVENTS and event.principal_id:
        # A review decision goes to the latest sync_creatives config covering the creative.
        params = {"principal": event.principal_id, "tenant": event.tenant_id}
        creative_id = event.payload.get("creative_id")
        for sync in await statements.fetch(session, _SYNC_REGISTRATIONS, params):
            if creative_id in (sync.creative_ids or ()):
                out.append(delivery_for(event, "push", sync.url, sync.config_id))
                break
    return out


_PACKAGES_OF_BUY = (
    select(Package)
    .where(Package.media_buy_id == bindparam("buy"))
    .order_by(col(Package.created_at), col(Package.package_id))
)


async def media_buy_payload(
    session: Tx,
    buy: MediaBuy,
    packages: Sequence[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``data`` of a media-buy event: what a receiver needs without calling back
    (budget, flight, principal, products, packages, wire status). ``packages``: the
    buy's packages (or rows with their columns), read in ``session`` when not given."""
    if packages is None:
        packages = await statements.fetch(session, _PACKAGES_OF_BUY, {"buy": buy.media_buy_id})
    now = utcnow()
    confirmed = None
    if buy.state not in ("pending_approval", "provisioning", "rejected"):
        confirmed = iso(buy.approved_at or buy.created_at)
    data: dict[str, Any] = {
        "media_buy_id": buy.media_buy_id,
        "principal_id": buy.principal_id,
        "account_id": buy.account_id,
        "buyer_ref": buy.buyer_ref,
        "po_number": buy.po_number,
        "advertiser_industry": buy.advertiser_industry,
        "state": buy.state,
        "media_buy_status": buy_state.wire_status(buy, now),
        "guaranteed": buy.guaranteed,
        "revision": buy.revision,
        "confirmed_at": confirmed,
        "total_budget": buy.total_budget,
        "currency": buy.currency,
        "start_time": iso(buy.start_time),
        "end_time": iso(buy.end_time),
        "product_ids": sorted({p.product_id for p in packages}),
        "packages": [
            {
                "package_id": p.package_id,
                "product_id": p.product_id,
                "pricing_option_id": p.pricing_option_id,
                "budget": p.budget,
                "pacing": p.pacing,
                "paused": p.paused,
            }
            for p in packages
        ],
    }
    data.update(extra)
    return data
