"""tenant management: admin api key, synced inventory

Revision ID: 0003_tenant_admin
Revises: 0001
Create Date: 2026-11-23 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adcp_agent.db.types

revision: str = "0003_tenant_admin"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_api_keys",
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_hint", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", adcp_agent.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", adcp_agent.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )

    op.create_table(
        "inventory_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("item_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("parent_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("synced_at", adcp_agent.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "item_id"),
    )
    with op.batch_alter_table("inventory_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inventory_items_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inventory_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_items_tenant_id"))

    op.drop_table("inventory_items")
    op.drop_table("admin_api_keys")
