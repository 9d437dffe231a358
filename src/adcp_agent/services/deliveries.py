"""The delivery ledger: leasing due deliveries, recording each outcome, and composing
the HTTP request for a delivery from its stored event.

A claim is one conditional UPDATE (due, not leased or lease expired → leased to this
claim), so two workers can never hold the same delivery at once on SQLite (one writer
at a time) or Postgres (the row lock re-checks the condition). The attempt counter goes
up at claim time: a worker that crashes mid-send has used an attempt, so an event that
kills workers still ends up dead instead of looping forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent import __version__
from adcp_agent.db.engine import Database
from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.models_events import (
    EventDelivery,
    OutboxEvent,
    PushNotificationRegistration,
    ReportingWebhook,
    WebhookEndpoint,
)
from adcp_agent.sealing import SecretBox
from adcp_agent.services import notification_text, push_notifications, reporting_webhooks, ssrf
from adcp_agent.services import webhook_signing as signing
from adcp_agent.services.identity import new_id
from adcp_agent.services.outbox import iso


class Undeliverable(Exception):
    """The destination is gone (e.g. the webhook was deleted): no retry can succeed."""


@dataclass(frozen=True)
class Outgoing:
    url: str
    body: bytes
    headers: dict[str, str]
    allowance: ssrf.Allowance


def _due(now: datetime) -> object:
    return and_(
        col(EventDelivery.status) == "pending",
        col(EventDelivery.next_attempt_at) <= now,
        or_(
            col(EventDelivery.lease_expires_at).is_(None),
            col(EventDelivery.lease_expires_at) <= now,
        ),
    )


async def claim(
    db: Database, *, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[EventDelivery]:
    """Lease up to ``limit`` due deliveries. The read-only probe first keeps an idle
    worker from taking SQLite's write lock on every poll."""
    async with db.reading() as session:
        ids = list(
            (
                await session.exec(
                    select(EventDelivery.delivery_id)
                    .where(_due(now))
                    .order_by(col(EventDelivery.next_attempt_at))
                    .limit(limit)
                )
            ).all()
        )
    if not ids:
        return []
    owner = f"{worker_id}:{new_id('lease')}"
    async with db.transaction() as session:
        await session.exec(
            update(EventDelivery)
            .where(col(EventDelivery.delivery_id).in_(ids), _due(now))
            .values(
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempts=EventDelivery.attempts + 1,
                updated_at=now,
            )
        )
        rows = (
            await session.exec(select(EventDelivery).where(EventDelivery.lease_owner == owner))
        ).all()
    return list(rows)


async def _refresh_event(session: AsyncSession, event_id: str, now: datetime) -> None:
    statuses = set(
        (
            await session.exec(
                select(EventDelivery.status).where(EventDelivery.event_id == event_id)
            )
        ).all()
    )
    status = "pending" if "pending" in statuses else "dead" if "dead" in statuses else "delivered"
    event = await session.get(OutboxEvent, event_id)
    if event is not None and event.status != status:
        event.status = status
        event.updated_at = now
        session.add(event)


async def finish(
    db: Database,
    delivery: EventDelivery,
    *,
    status: str,
    now: datetime,
    status_code: int | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record an attempt's outcome and release the lease. False when the lease was lost
    (it expired and another worker took the delivery): that worker's outcome wins."""
    values: dict[str, object] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": status_code,
        "last_error": error[:500] if error else None,
        "updated_at": now,
    }
    if status == "delivered":
        values["delivered_at"] = now
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    async with db.transaction() as session:
        result = await session.exec(
            update(EventDelivery)
            .where(
                col(EventDelivery.delivery_id) == delivery.delivery_id,
                col(EventDelivery.lease_owner) == delivery.lease_owner,
            )
            .values(**values)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return False
        await _refresh_event(session, delivery.event_id, now)
    return True


def envelope(event: OutboxEvent) -> dict[str, object]:
    """What publisher webhooks receive. ``id`` is stable across retries: dedupe on it."""
    return {
        "id": event.event_id,
        "event": event.event_type,
        "timestamp": iso(event.created_at),
        "tenant_id": event.tenant_id,
        "data": event.payload,
    }


def _authenticate(
    headers: dict[str, str],
    target: PushNotificationRegistration | ReportingWebhook,
    body: bytes,
    timestamp: int,
    box: SecretBox,
) -> None:
    """A buyer's legacy webhook authentication: ``Bearer`` or AdCP's HMAC-SHA256."""
    sealed = target.auth_credentials
    credentials = None if sealed is None else box.open(sealed)
    if target.auth_scheme == "Bearer" and credentials:
        headers["Authorization"] = f"Bearer {credentials}"
    elif target.auth_scheme == "HMAC-SHA256" and credentials:
        headers.update(signing.adcp_hmac_headers(credentials, body, timestamp))


def _encode(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


async def compose(
    db: Database, delivery: EventDelivery, *, now: datetime, base_url: str, box: SecretBox
) -> Outgoing:
    """Build the request from what is stored now (so a rotated Slack URL or a deleted
    webhook is honoured). Raises Undeliverable when the destination no longer exists,
    SecretKeyError when a secret does not open with ``box`` (a server left with an old
    key after a rotation: another server, or this one restarted, can send it later)."""
    async with db.session() as session:
        event = await session.get(OutboxEvent, delivery.event_id)
        tenant = await session.get(Tenant, delivery.tenant_id)
        assert event is not None and tenant is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"adcp-agent/{__version__}",
            signing.EVENT_ID_HEADER: event.event_id,
            signing.EVENT_TYPE_HEADER: event.event_type,
            signing.ATTEMPT_HEADER: str(delivery.attempts),
        }
        timestamp = int(now.timestamp())
        allowance = ssrf.Allowance.from_features(tenant.features)
        if delivery.channel == "webhook":
            endpoint = await session.get(WebhookEndpoint, delivery.target_id or "")
            if endpoint is None or endpoint.deleted_at is not None:
                raise Undeliverable("the webhook endpoint was deleted")
            body = _encode(envelope(event))
            secret = box.open(endpoint.secret)
            headers.update(signing.signature_headers(secret, body, timestamp))
            return Outgoing(endpoint.url, body, headers, allowance)
        if delivery.channel == "push":
            registration = await session.get(PushNotificationRegistration, delivery.target_id or "")
            if registration is None:
                raise Undeliverable("the push notification registration is gone")
            token = None if registration.token is None else box.open(registration.token)
            body = _encode(push_notifications.payload(event, registration, token))
            _authenticate(headers, registration, body, timestamp, box)
            return Outgoing(registration.url, body, headers, allowance)
        if delivery.channel == reporting_webhooks.CHANNEL:
            hook = await session.get(ReportingWebhook, delivery.target_id or "")
            if hook is None:
                raise Undeliverable("the reporting webhook is gone")
            token = None if hook.token is None else box.open(hook.token)
            body = _encode(reporting_webhooks.body(event, token))
            _authenticate(headers, hook, body, timestamp, box)
            return Outgoing(hook.url, body, headers, allowance)
        if delivery.channel == "slack":
            url = tenant.features.get("slack_webhook_url")
            if not isinstance(url, str) or not url:
                raise Undeliverable("the tenant's Slack webhook was removed")
            url = box.open(url)
            principal_id = event.principal_id or event.payload.get("principal_id")
            principal = await session.get(Principal, principal_id) if principal_id else None
            summary = notification_text.summarize(
                event.event_type,
                event.payload,
                tenant_name=tenant.name,
                principal_name=principal.name if principal else None,
                base_url=base_url,
            )
            body = _encode(notification_text.slack_message(summary, event.event_id))
            return Outgoing(url, body, headers, allowance)
    raise Undeliverable(f"unknown channel {delivery.channel!r}")
