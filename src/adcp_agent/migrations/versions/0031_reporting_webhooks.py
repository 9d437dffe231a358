"""reporting_webhooks: scheduled delivery reports pushed to buyers

Revision ID: 0031_reporting_webhooks
Revises: 0030_package_start

AdCP 3.1 create_media_buy / update_media_buy ``reporting_webhook``: the buyer's URL,
authentication (sealed), frequency (hourly or daily) and metrics; the outbox worker
sends each period's get_media_buy_delivery report once the period has closed
(``notification_type: scheduled``, numbered), and ``final`` for the period the buy
ends in. ``next_due_at`` is when the next report is due (NULL once the final went).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0031_reporting_webhooks"
down_revision: str | None = "0030_package_start"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "reporting_webhooks",
        sa.Column("media_buy_id", _text(64), nullable=False),
        sa.Column("tenant_id", _text(64), nullable=False),
        sa.Column("principal_id", _text(64), nullable=False),
        sa.Column("url", _text(2048), nullable=False),
        sa.Column("token", _text(8192), nullable=True),
        sa.Column("auth_scheme", _text(20), nullable=True),
        sa.Column("auth_credentials", _text(8192), nullable=True),
        sa.Column("frequency", _text(10), nullable=False),
        sa.Column("requested_metrics", sa.JSON(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("next_due_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["media_buy_id"], ["media_buys.media_buy_id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.PrimaryKeyConstraint("media_buy_id"),
    )
    op.create_index(
        "ix_reporting_webhooks_due", "reporting_webhooks", ["next_due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_reporting_webhooks_due", table_name="reporting_webhooks")
    op.drop_table("reporting_webhooks")
