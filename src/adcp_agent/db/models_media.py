"""Media buys, their packages, async tasks (approvals) and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import UTCDateTime, json_column, ts_column, utcnow

# Running buys whose campaign.completed event is not out yet: the rows of the partial
# index the outbox worker's flight-end scan reads (few, however long the history).
COMPLETION_DUE = "completion_announced_at IS NULL AND state IN ('live', 'paused')"
# Buys an update_media_buy holds: the rows of the partial index the sweep for lapsed
# leases reads (services.interrupted).
LEASED = "update_lease IS NOT NULL"


class MediaBuy(SQLModel, table=True):
    __tablename__ = "media_buys"
    __table_args__ = (
        Index("ix_media_buys_tenant_principal", "tenant_id", "principal_id"),
        # get_media_buys pages (services.media_reads.page_buys): walked in order, and
        # the status/account/sandbox filters and the count answered from the index.
        Index(
            "ix_media_buys_listing",
            "tenant_id",
            "principal_id",
            "created_at",
            "media_buy_id",
            "state",
            "start_time",
            "end_time",
            "sandbox",
            "account_id",
        ),
        # The outbox worker's flight-end scan (services.outbox_worker.check_campaigns):
        # only running buys not yet announced as completed, in flight-end order.
        Index(
            "ix_media_buys_completion_due",
            "end_time",
            sqlite_where=text(COMPLETION_DUE),
            postgresql_where=text(COMPLETION_DUE),
        ),
        Index(
            "ix_media_buys_leased",
            "update_lease_until",
            sqlite_where=text(LEASED),
            postgresql_where=text(LEASED),
        ),
    )

    media_buy_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", index=True, max_length=64)
    buyer_ref: str | None = Field(default=None, max_length=200)
    brand: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    po_number: str | None = Field(default=None, max_length=100)
    advertiser_industry: str | None = Field(default=None, max_length=64)  # AdCP's list
    # Governed accounts (sync_governance): the plan the buy was booked under, the
    # governance agent's context for its lifecycle and the check that approved it.
    plan_id: str | None = Field(default=None, max_length=255)
    governance_context: str | None = None
    governance_check_id: str | None = Field(default=None, max_length=255)
    # When the governance agent next expects delivery figures, and up to when it has them.
    governance_next_check: datetime | None = Field(
        default=None, sa_column=ts_column(nullable=True, index=True)
    )
    governance_reported_until: datetime | None = Field(
        default=None, sa_column=ts_column(nullable=True)
    )
    # pending_approval | live | paused | rejected | canceled  (wire status is derived
    # from this and the flight dates: pending_start / active / completed)
    state: str = Field(max_length=20, index=True)
    guaranteed: bool = False
    start_time: datetime = Field(sa_column=ts_column())
    end_time: datetime = Field(sa_column=ts_column())
    total_budget: float
    currency: str = Field(default="USD", max_length=3)
    pacing: str = Field(default="even", max_length=20)
    daily_cap: float | None = None
    ad_server: str = Field(max_length=40)
    sandbox: bool = False
    external_order_id: str | None = Field(default=None, max_length=128)
    archived: bool = False
    revision: int = 1  # bumped on every change; buyers may send it to detect races
    rejection_reason: str | None = None
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    # When campaign.completed was emitted for this buy (once per buy, ever).
    completion_announced_at: datetime | None = Field(
        default=None, sa_column=ts_column(nullable=True)
    )
    # Held by an update_media_buy while it applies a change (services.media_updates):
    # the holder's token, and when the lease lapses if the holder never gives it back.
    update_lease: str | None = Field(default=None, max_length=40)
    update_lease_until: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    # What the holder reserved ahead of the ad server, and what that replaced, so a
    # lease that lapses (its server stopped) can be undone: {"buy": {field: [before,
    # ahead]}, "goals": {package_id: [before, ahead]}} (services.interrupted).
    update_lease_undo: dict[str, Any] | None = Field(
        default=None, sa_column=json_column(nullable=True)
    )
    # Once canceled (AdCP's cancellation object): when (business time), by whom
    # (buyer | seller) and why, if the canceller said.
    canceled_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    canceled_by: str | None = Field(default=None, max_length=10)
    cancellation_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


# Copies of the buy's state, flight and sandbox flag, kept by database triggers
# (migration 0015), and numbers the database computes from them (generated columns,
# migration 0017): the flight in epoch seconds and the package's reserving rate (its
# impressions goal per second of flight while its buy holds inventory, else NULL), for
# the reservation sum of guaranteed packages (migration 0021). Columns of the packages table but not
# of the model (excluded from its mapper), so the application never loads or writes
# them; services.avails reads them through Package.__table__.
_FLIGHT_COPIES = (
    Column("buy_state", String(20), nullable=True),
    Column("flight_start", UTCDateTime(), nullable=True),
    Column("flight_end", UTCDateTime(), nullable=True),
    Column("buy_sandbox", Boolean(), nullable=True),
    Column("flight_start_s", Float(), nullable=True),
    Column("flight_end_s", Float(), nullable=True),
    Column("reserve_rate", Float(), nullable=True),
)


class Package(SQLModel, table=True):
    __tablename__ = "packages"
    __table_args__ = (
        *_FLIGHT_COPIES,
        # Holds only reserving guaranteed packages, with what the reservation sum every
        # booking and avails check runs (services.avails.reserved) needs, read from it
        # alone.
        Index(
            "ix_packages_reserving",
            "tenant_id",
            "product_id",
            "buy_sandbox",
            "flight_end_s",
            "flight_start_s",
            "reserve_rate",
            "media_buy_id",
            sqlite_where=text("reserve_rate IS NOT NULL AND guaranteed = 1"),
            postgresql_where=text("reserve_rate IS NOT NULL AND guaranteed = true"),
        ),
    )
    __mapper_args__ = {"exclude_properties": [c.name for c in _FLIGHT_COPIES]}

    package_id: str = Field(primary_key=True, max_length=64)
    media_buy_id: str = Field(foreign_key="media_buys.media_buy_id", index=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    product_id: str = Field(max_length=128, index=True)
    buyer_ref: str | None = Field(default=None, max_length=200)
    pricing_option_id: str = Field(max_length=64)
    pricing_model: str = Field(default="cpm", max_length=20)
    rate: float  # fixed price, or the bid for auction pricing
    guaranteed: bool = False
    budget: float
    impressions_goal: int | None = None
    pacing: str = Field(default="even", max_length=20)  # even | asap | front_loaded
    paused: bool = False
    targeting: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    # Device bid multipliers in percent ({"mobile": -20}), from adjust_bid operations.
    bid_adjustments: dict[str, float] = Field(default_factory=dict, sa_column=json_column())
    # AdCP optimization_goals as validated (metric goals; the first is primary).
    optimization_goals: list[dict[str, Any]] | None = Field(
        default=None, sa_column=json_column(nullable=True)
    )
    creative_ids: list[str] = Field(default_factory=list, sa_column=json_column())
    format_ids: list[str] = Field(default_factory=list, sa_column=json_column())
    external_line_id: str | None = Field(default=None, max_length=128)
    # A package canceled on its own (update_media_buy packages[].canceled): it delivers
    # no more and its guaranteed goal is released; when, by whom, why.
    canceled_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    canceled_by: str | None = Field(default=None, max_length=10)
    cancellation_reason: str | None = Field(default=None, max_length=500)
    # A package with a flight of its own inside the buy's (its start_time/end_time), or
    # added after its buy started (runs from then): its line, pacing and delivery run
    # over it. None: the buy's start / end.
    start_time: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    end_time: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class Task(SQLModel, table=True):
    """Asynchronous work a buyer can poll: approvals now, slow adapters later."""

    __tablename__ = "tasks"
    # list_tasks: a buyer's tasks by creation time
    __table_args__ = (Index("ix_tasks_listing", "tenant_id", "principal_id", "created_at"),)

    task_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    task_type: str = Field(max_length=40)  # create_media_buy | update_media_buy | ...
    # submitted | working | input-required | completed | failed | canceled | rejected
    status: str = Field(max_length=20, index=True)
    media_buy_id: str | None = Field(default=None, max_length=64, index=True)
    message: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    error: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    decided_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class IdempotencyRecord(SQLModel, table=True):
    """One row per (caller, tool, key): the request fingerprint and the response that
    was acknowledged, so a retry returns it instead of acting twice."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("tenant_id", "principal_id", "tool", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    principal_id: str = Field(max_length=64)
    tool: str = Field(max_length=64)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=20)  # in_flight | completed
    # What the claimed attempt is creating (a media buy id), so a retry that retakes a
    # stale claim can release what that attempt left (services.interrupted).
    subject_id: str | None = Field(default=None, max_length=64)
    response: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


def package_flight(package: Package, buy: MediaBuy) -> tuple[datetime, datetime]:
    """When ``package`` runs: its own flight, else its buy's."""
    return package.start_time or buy.start_time, package.end_time or buy.end_time
