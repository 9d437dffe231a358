"""media buys: who canceled, when and why

Revision ID: 0026_cancellation
Revises: 0025_creatives_by_creation

AdCP 3.1 reports a canceled buy's ``cancellation`` ({canceled_at, canceled_by, reason})
and asks sellers to keep the reason a buyer gives (update_media_buy's
``cancellation_reason``). Buys canceled before this migration keep NULLs; they are read
as canceled by the buyer (the only way to cancel then) at their last update.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0026_cancellation"
down_revision: str | None = "0025_creatives_by_creation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("media_buys", sa.Column("canceled_at", UTCDateTime(), nullable=True))
    op.add_column("media_buys", sa.Column("canceled_by", sa.String(length=10), nullable=True))
    op.add_column(
        "media_buys", sa.Column("cancellation_reason", sa.String(length=500), nullable=True)
    )


def downgrade() -> None:
    for column in ("cancellation_reason", "canceled_by", "canceled_at"):
        op.drop_column("media_buys", column)
