"""media_buys: the advertiser industry a buy was booked for

Revision ID: 0033_advertiser_industry
Revises: 0032_creative_push

AdCP 3.1 create_media_buy ``advertiser_industry`` (AdCP's list; the publisher's
``features.blocked_industries`` refuses some): kept with the buy and shown to the
publisher with it (notifications, webhooks).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_advertiser_industry"
down_revision: str | None = "0032_creative_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "media_buys", sa.Column("advertiser_industry", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("media_buys", "advertiser_industry")
