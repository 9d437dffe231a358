"""event_sources and conversion_events: conversion tracking (AdCP sync_event_sources,
log_event)

Revision ID: 0035_conversions
Revises: 0034_governance

A buyer configures event sources on its accounts and logs conversion events to them;
an event naming a tracked click (``user_match.click_id``) is attributed to that click's
package and reported in get_media_buy_delivery (conversions, value, ROAS, CPA).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0035_conversions"
down_revision: str | None = "0034_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "event_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", _text(64), nullable=False),
        sa.Column("account_id", _text(64), nullable=False),
        sa.Column("event_source_id", _text(255), nullable=False),
        sa.Column("name", _text(255), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("action_source", _text(20), nullable=True),
        sa.Column("allowed_domains", sa.JSON(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "account_id", "event_source_id"),
    )
    op.create_index("ix_event_sources_account_id", "event_sources", ["account_id"])
    op.create_table(
        "conversion_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", _text(64), nullable=False),
        sa.Column("source_key", sa.Integer(), nullable=False),
        sa.Column("event_type", _text(40), nullable=False),
        sa.Column("event_id", _text(255), nullable=False),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("action_source", _text(20), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("click_id", _text(200), nullable=True),
        sa.Column("media_buy_id", _text(64), nullable=True),
        sa.Column("package_id", _text(64), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.ForeignKeyConstraint(["source_key"], ["event_sources.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key", "event_type", "event_id"),
    )
    op.create_index(
        "ix_conversion_events_buy_time", "conversion_events", ["media_buy_id", "event_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversion_events_buy_time", table_name="conversion_events")
    op.drop_table("conversion_events")
    op.drop_index("ix_event_sources_account_id", table_name="event_sources")
    op.drop_table("event_sources")
