"""Delivery: hourly figures per package (from the simulator, real tracking events or the
ad server), how far each buy has been materialised, tracked events (for dedup),
performance feedback and pacing alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class DeliveryHour(SQLModel, table=True):
    """What one package delivered in one UTC hour, per source. Ad-server reports are
    daily: their rows sit at the day's first hour."""

    __tablename__ = "delivery_hours"
    __table_args__ = (
        UniqueConstraint("package_id", "hour", "source"),
        Index("ix_delivery_hours_buy_hour", "media_buy_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    media_buy_id: str = Field(foreign_key="media_buys.media_buy_id", max_length=64)
    package_id: str = Field(foreign_key="packages.package_id", max_length=64)
    hour: datetime = Field(sa_column=ts_column())
    source: str = Field(max_length=20)  # simulator | tracking | adapter
    impressions: int = 0
    clicks: int = 0
    completions: int = 0
    spend: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class DeliveryWatermark(SQLModel, table=True):
    """Every hour of the buy before ``materialised_until`` is final: the simulator never
    computes an hour twice, whatever the number of readers or restarts."""

    __tablename__ = "delivery_watermarks"

    media_buy_id: str = Field(
        primary_key=True, foreign_key="media_buys.media_buy_id", max_length=64
    )
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    materialised_until: datetime = Field(sa_column=ts_column())
    adapter_synced_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class TrackingEvent(SQLModel, table=True):
    """One real event from a tracking source; the unique key is the dedup guarantee."""

    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    kind: str = Field(max_length=20)  # impression | click | completion
    event_id: str = Field(max_length=200)
    media_buy_id: str = Field(foreign_key="media_buys.media_buy_id", index=True, max_length=64)
    package_id: str = Field(foreign_key="packages.package_id", max_length=64)
    creative_id: str | None = Field(default=None, max_length=128)
    occurred_at: datetime = Field(sa_column=ts_column())
    cost: float = 0.0  # what was billed for it (capped by the package budget)
    event_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    received_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class PerformanceFeedback(SQLModel, table=True):
    __tablename__ = "performance_feedback"

    feedback_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    media_buy_id: str = Field(foreign_key="media_buys.media_buy_id", index=True, max_length=64)
    package_id: str | None = Field(default=None, foreign_key="packages.package_id", max_length=64)
    creative_id: str | None = Field(default=None, max_length=128)
    period_start: datetime = Field(sa_column=ts_column())
    period_end: datetime = Field(sa_column=ts_column())
    performance_index: float
    metric_type: str = Field(max_length=40)
    feedback_source: str = Field(max_length=40)
    feedback_type: str | None = Field(default=None, max_length=40)  # seed-002 form
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    status: str = Field(max_length=20)  # accepted | applied
    # Clock time it arrived: the simulator applies it to hours from here on.
    received_at: datetime = Field(sa_column=ts_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class PacingAlert(SQLModel, table=True):
    """Under- or over-pacing of a buy, one record per buy, day and kind (refreshed with
    the latest figures while the day lasts)."""

    __tablename__ = "pacing_alerts"
    __table_args__ = (UniqueConstraint("media_buy_id", "day", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", index=True, max_length=64)
    media_buy_id: str = Field(foreign_key="media_buys.media_buy_id", index=True, max_length=64)
    day: date
    kind: str = Field(max_length=20)  # underpacing | overpacing
    severity: str = Field(max_length=20)  # warning | critical
    pacing_index: float
    expected_spend: float
    actual_spend: float
    message: str
    recommendation: str
    observed_at: datetime = Field(sa_column=ts_column())  # clock time of the figures
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class EventSource(SQLModel, table=True):
    """A buyer's conversion event source on one of its accounts (sync_event_sources)."""

    __tablename__ = "event_sources"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", "event_source_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", index=True, max_length=64)
    event_source_id: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255)
    event_types: list[str] | None = Field(default=None, sa_column=json_column(nullable=True))
    action_source: str | None = Field(default=None, max_length=20)
    allowed_domains: list[str] | None = Field(default=None, sa_column=json_column(nullable=True))
    # Removed by a sync with delete_missing; its logged events stay (and are reported).
    deleted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class ConversionEvent(SQLModel, table=True):
    """One conversion event a buyer logged (log_event); the unique key is AdCP's dedup
    (an event id within its type and source). Attributed to the package whose tracked
    click it names (``user_match.click_id``), or to nothing."""

    __tablename__ = "conversion_events"
    __table_args__ = (
        UniqueConstraint("source_key", "event_type", "event_id"),
        Index("ix_conversion_events_buy_time", "media_buy_id", "event_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    source_key: int = Field(foreign_key="event_sources.id")
    event_type: str = Field(max_length=40)
    event_id: str = Field(max_length=255)
    event_time: datetime = Field(sa_column=ts_column())
    action_source: str | None = Field(default=None, max_length=20)
    value: float | None = None  # in the attributed buy's currency; None when not counted
    click_id: str | None = Field(default=None, max_length=200)
    media_buy_id: str | None = Field(default=None, max_length=64)
    package_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
