"""creatives and tasks: listing indexes (a buyer's rows in listing order)

Revision ID: 0023_listing_indexes
Revises: 0022_claim_subject

list_creatives and list_tasks page in the database: a buyer's creatives most recently
changed first, a buyer's tasks by creation time. Without an index on (tenant_id,
principal_id, updated_at / created_at) every page sorted all of the buyer's rows; with
it a page reads the rows it returns. Each replaces the index on (tenant_id,
principal_id), which is its prefix.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_listing_indexes"
down_revision: str | None = "0022_claim_subject"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    # (table, old index, new index, the new index's ordering column)
    ("creatives", "ix_creatives_tenant_principal", "ix_creatives_listing", "updated_at"),
    ("tasks", "ix_tasks_tenant_principal", "ix_tasks_listing", "created_at"),
)


def upgrade() -> None:
    for table, old, new, ordering in _INDEXES:
        op.create_index(new, table, ["tenant_id", "principal_id", ordering])
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, old, new, _ordering in _INDEXES:
        op.create_index(old, table, ["tenant_id", "principal_id"])
        op.drop_index(new, table_name=table)
