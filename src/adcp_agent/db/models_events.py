"""Notifications: the transactional outbox, its per-destination deliveries, tenant webhook
endpoints, buyers' AdCP push-notification registrations and email drafts.

An ``OutboxEvent`` is written in the same transaction as the change it describes; its
``EventDelivery`` rows (one per destination) are the units of work the delivery worker
leases, retries and dead-letters. Nothing is sent from inside a request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_tenant_created", "tenant_id", "created_at"),)

    event_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    event_type: str = Field(max_length=64, index=True)
    # pending (a delivery is still due) | delivered (every destination took it, or there
    # was none) | dead (a destination gave up after its last attempt)
    status: str = Field(max_length=20, index=True)
    principal_id: str | None = Field(default=None, max_length=64)
    media_buy_id: str | None = Field(default=None, max_length=64, index=True)
    # Set for events that must exist at most once (campaign.completed per buy); the
    # unique index makes two workers racing on the same buy collide instead of duplicate.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class EventDelivery(SQLModel, table=True):
    """One event to one destination. A worker owns it while ``lease_expires_at`` is in
    the future; a crashed worker's lease simply runs out and another worker retries."""

    __tablename__ = "event_deliveries"
    __table_args__ = (Index("ix_event_deliveries_due", "status", "next_attempt_at"),)

    delivery_id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(foreign_key="outbox_events.event_id", index=True, max_length=64)
    tenant_id: str = Field(max_length=64)
    channel: str = Field(max_length=20)  # webhook | slack | push
    target_id: str | None = Field(default=None, max_length=64)  # webhook or push config id
    url: str = Field(max_length=2048)
    status: str = Field(max_length=20)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    lease_owner: str | None = Field(default=None, max_length=120)
    lease_expires_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class WebhookEndpoint(SQLModel, table=True):
    """A publisher's webhook. The secret is kept (HMAC signing needs the secret itself,
    unlike token checks, which only need a hash), sealed (``adcp_agent.sealing``), and
    shown by the API only once."""

    __tablename__ = "webhook_endpoints"

    webhook_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    name: str = Field(default="", max_length=200)
    url: str = Field(max_length=2048)
    secret: str = Field(max_length=1024)  # sealed
    secret_hint: str = Field(max_length=16)
    events: list[str] = Field(default_factory=list, sa_column=json_column())  # [] = all
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    deleted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class PushNotificationRegistration(SQLModel, table=True):
    """A buyer's AdCP ``push_notification_config`` for one media buy. Rows are never
    changed: a later create/update that carries a config adds a row, which receives the
    events from then on, while deliveries already queued keep the one they were made for."""

    __tablename__ = "push_notification_configs"

    config_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(max_length=64)
    # None for a sync_creatives config, which covers ``creative_ids`` instead.
    media_buy_id: str | None = Field(default=None, max_length=64, index=True)
    creative_ids: list[str] | None = Field(default=None, sa_column=json_column(nullable=True))
    task_type: str = Field(max_length=40)  # create_media_buy | update_media_buy | sync_creatives
    task_id: str | None = Field(default=None, max_length=64)
    url: str = Field(max_length=2048)
    operation_id: str | None = Field(default=None, max_length=255)
    token: str | None = Field(default=None, max_length=8192)  # sealed
    auth_scheme: str | None = Field(default=None, max_length=20)  # Bearer | HMAC-SHA256
    auth_credentials: str | None = Field(default=None, max_length=8192)  # sealed
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class NotificationDraft(SQLModel, table=True):
    """An email about a media-buy event, created with the event and sent on request. The
    text is rendered from the event when read, so it always links to this server's URL."""

    __tablename__ = "notification_drafts"

    draft_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str | None = Field(default=None, max_length=64)
    media_buy_id: str | None = Field(default=None, max_length=64, index=True)
    event_id: str = Field(foreign_key="outbox_events.event_id", max_length=64)
    event_type: str = Field(max_length=64)
    status: str = Field(default="draft", max_length=20)  # draft | sending | sent
    email_id: str | None = Field(default=None, max_length=300)
    sent_to: list[str] = Field(default_factory=list, sa_column=json_column())
    sent_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class ReportingWebhook(SQLModel, table=True):
    """A buyer's AdCP ``reporting_webhook`` for one media buy: where its scheduled
    delivery reports go, how often, and how far they have got. One per buy; a later
    create/update that carries one replaces it (the numbering goes on)."""

    __tablename__ = "reporting_webhooks"
    # The worker's scan: the reports due now.
    __table_args__ = (Index("ix_reporting_webhooks_due", "next_due_at"),)

    media_buy_id: str = Field(
        primary_key=True, foreign_key="media_buys.media_buy_id", max_length=64
    )
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(max_length=64)
    url: str = Field(max_length=2048)
    token: str | None = Field(default=None, max_length=8192)  # sealed
    auth_scheme: str | None = Field(default=None, max_length=20)  # Bearer | HMAC-SHA256
    auth_credentials: str | None = Field(default=None, max_length=8192)  # sealed
    frequency: str = Field(max_length=10)  # hourly | daily
    requested_metrics: list[str] | None = Field(default=None, sa_column=json_column(nullable=True))
    sequence: int = 0  # reports sent so far
    # The next report covers [period_start, next_due_at) of business time; it is sent
    # once the clock passes next_due_at. None: the final report went.
    period_start: datetime = Field(sa_column=ts_column())
    next_due_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
