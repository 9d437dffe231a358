"""media buys: what an update reserved ahead, so a lapsed lease can be undone

Revision ID: 0020_interrupted_work
Revises: 0019_sealed_secrets

An update_media_buy reserves a larger goal, a later end or a resubmitted state before
it calls the ad server. A server stopped in between left those reservations in place
for good (and the next update planned from them). The lease now records what it
replaced (``update_lease_undo``), and a partial index holds the leased buys, so the
sweep for lapsed leases (services.interrupted) reads only those.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_interrupted_work"
down_revision: str | None = "0019_sealed_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy on SQLite: that would drop 0015's triggers).
    op.add_column("media_buys", sa.Column("update_lease_undo", sa.JSON(), nullable=True))
    op.create_index(
        "ix_media_buys_leased",
        "media_buys",
        ["update_lease_until"],
        sqlite_where=sa.text("update_lease IS NOT NULL"),
        postgresql_where=sa.text("update_lease IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_media_buys_leased", table_name="media_buys")
    op.drop_column("media_buys", "update_lease_undo")
