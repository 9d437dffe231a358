"""catalog version: signals bump it too

Revision ID: 0013_signal_version
Revises: 0011_catalog_version

The catalog cache (migration 0011) now also holds the tenant's signals, which
get_avails and create_media_buy validate targeting against: inserting, changing or
deleting a signal must invalidate it like any other catalog row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_signal_version"
down_revision: str | None = "0011_catalog_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = "UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = {row}.tenant_id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # bump_catalog_version() is the function 0011 created for the other tables.
        op.execute(
            "CREATE TRIGGER signals_catalog_version AFTER INSERT OR UPDATE OR DELETE "
            "ON signals FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()"
        )
        return
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        extra = f"; {BUMP.format(row='OLD')}" if event == "UPDATE" else ""
        op.execute(
            f"CREATE TRIGGER signals_catalog_{event.lower()} AFTER {event} ON signals "
            f"BEGIN {BUMP.format(row=row)}{extra}; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS signals_catalog_version ON signals")
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS signals_catalog_{event}")
