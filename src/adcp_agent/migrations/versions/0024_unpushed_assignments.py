"""creative assignments: an index on what the ad server does not hold yet

Revision ID: 0024_unpushed_assignments
Revises: 0023_listing_indexes

Every sync_creatives and every creative decision looks for the tenant's assignments not
yet pushed to the ad server. Without an index on (tenant_id, pushed) the planner started
from every approved creative of the installation and probed each one's assignments.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_unpushed_assignments"
down_revision: str | None = "0023_listing_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_creative_assignments_unpushed", "creative_assignments", ["tenant_id", "pushed"]
    )


def downgrade() -> None:
    op.drop_index("ix_creative_assignments_unpushed", table_name="creative_assignments")
