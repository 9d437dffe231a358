"""media_buys: when the governance agent next expects delivery figures

Revision ID: 0037_governance_delivery
Revises: 0036_package_end

A governance agent that approves a buy may ask for delivery reports (its verdict's
``next_check``): at that time the outbox worker sends it ``check_governance`` with
phase ``delivery`` and the figures since the last report (``governance_reported_until``).
A denial pauses the buy.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0037_governance_delivery"
down_revision: str | None = "0036_package_end"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("media_buys", sa.Column("governance_next_check", UTCDateTime(), nullable=True))
    op.add_column(
        "media_buys", sa.Column("governance_reported_until", UTCDateTime(), nullable=True)
    )
    op.create_index("ix_media_buys_governance_next_check", "media_buys", ["governance_next_check"])


def downgrade() -> None:
    op.drop_index("ix_media_buys_governance_next_check", table_name="media_buys")
    op.drop_column("media_buys", "governance_reported_until")
    op.drop_column("media_buys", "governance_next_check")
