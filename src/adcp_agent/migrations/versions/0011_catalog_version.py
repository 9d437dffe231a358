"""catalog version: a per-tenant stamp of the catalog, kept by triggers

Revision ID: 0011_catalog_version
Revises: 0001

get_products and get_adcp_capabilities serve the catalog from an in-process cache. The
cache is valid while ``tenants.catalog_version`` is unchanged; triggers bump it on any
insert, update or delete of a product, creative format or authorized property, by any
writer in any process (the admin API, the CLI, a second server, a hand-written SQL
fix). The token lookup that authenticates each call reads it at no extra cost.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_catalog_version"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATALOG_TABLES = ("products", "creative_formats", "authorized_properties")
BUMP = "UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = {row}.tenant_id"


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("catalog_version", sa.Integer(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION bump_catalog_version() RETURNS trigger AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    UPDATE tenants SET catalog_version = catalog_version + 1
                    WHERE tenant_id = OLD.tenant_id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    UPDATE tenants SET catalog_version = catalog_version + 1
                    WHERE tenant_id = NEW.tenant_id;
                END IF;
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in CATALOG_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_catalog_version AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()"
            )
        return
    for table in CATALOG_TABLES:
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            extra = f"; {BUMP.format(row='OLD')}" if event == "UPDATE" else ""
            op.execute(
                f"CREATE TRIGGER {table}_catalog_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {BUMP.format(row=row)}{extra}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CATALOG_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_catalog_version()")
    else:
        for table in CATALOG_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_{event}")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("catalog_version")
