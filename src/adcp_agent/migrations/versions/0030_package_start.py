"""packages: a start of their own when added mid-flight

Revision ID: 0030_package_start
Revises: 0029_package_cancellation

AdCP 3.1 update_media_buy adds packages to a booked buy (``new_packages``). One added
after the buy started runs from the moment it was added to the buy's end: its line
starts then, and its pacing and simulated delivery count from then, not from the buy's
start. NULL (every package booked with its buy) means the buy's start.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0030_package_start"
down_revision: str | None = "0029_package_cancellation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("packages", sa.Column("start_time", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("packages", "start_time")
