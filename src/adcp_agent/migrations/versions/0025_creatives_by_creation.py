"""creatives: an index for listing by creation time

Revision ID: 0025_creatives_by_creation
Revises: 0024_unpushed_assignments

list_creatives sorts by created_date unless asked otherwise (AdCP 3.1's default), so a
buyer's creatives by creation time get an index of their own beside the one by update
time.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_creatives_by_creation"
down_revision: str | None = "0024_unpushed_assignments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_creatives_created", "creatives", ["tenant_id", "principal_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_creatives_created", table_name="creatives")
