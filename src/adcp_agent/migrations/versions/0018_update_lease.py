"""media buys: a lease held while an update is being applied

Revision ID: 0018_update_lease
Revises: 0017_reserving_rate

update_media_buy validates a change, sends it to the ad server, then commits it. Two
concurrent updates of one buy both planned from the same stored rows, and the second
commit wrote its whole copy over the first's (a package budget the ad server had
taken was lost from the database). An update now first takes the buy's lease — a
conditional UPDATE that succeeds only at the revision it planned from and while no
other update holds an unexpired lease — and gives it back with its commit. The lease
expires on its own (a server killed mid-update does not lock the buy for good).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0018_update_lease"
down_revision: str | None = "0017_reserving_rate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy on SQLite: that would drop 0015's triggers).
    op.add_column("media_buys", sa.Column("update_lease", sa.String(40), nullable=True))
    op.add_column("media_buys", sa.Column("update_lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("media_buys", "update_lease_until")
    op.drop_column("media_buys", "update_lease")
