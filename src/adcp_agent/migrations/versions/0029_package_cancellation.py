"""packages: canceled on their own

Revision ID: 0029_package_cancellation
Revises: 0028_creative_declarations

AdCP 3.1 update_media_buy cancels a single package (``packages[].canceled`` with an
optional ``cancellation_reason``): it delivers no more, its line is paused at the ad
server for good, and a guaranteed package's goal is released (its reserving rate, a
generated column, follows the goal). The package reports ``canceled`` and AdCP's
``cancellation`` {canceled_at, canceled_by, reason}.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0029_package_cancellation"
down_revision: str | None = "0028_creative_declarations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("packages", sa.Column("canceled_at", UTCDateTime(), nullable=True))
    op.add_column("packages", sa.Column("canceled_by", sa.String(length=10), nullable=True))
    op.add_column(
        "packages", sa.Column("cancellation_reason", sa.String(length=500), nullable=True)
    )


def downgrade() -> None:
    for column in ("cancellation_reason", "canceled_by", "canceled_at"):
        op.drop_column("packages", column)
