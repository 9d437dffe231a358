"""campaign.completed: each buy records when its completion was announced

Revision ID: 0016_completion_due
Revises: 0015_package_flight

The outbox worker looks for running buys whose flight has ended and that have no
campaign.completed event yet. Buys stay live or paused after their flight ends, so
that scan visited every ended buy of the history and probed the outbox for each
(~125 ms on the event loop at 100k buys, once a minute per server). Each buy now
records when its completion was announced, and a partial index holds only the
running buys not yet announced, so the scan reads a handful of rows.

Buys already announced (a campaign.completed event exists) are backfilled with the
event's time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0016_completion_due"
down_revision: str | None = "0015_package_flight"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_media_buys_completion_due"
DUE = "completion_announced_at IS NULL AND state IN ('live', 'paused')"


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy on SQLite: that would drop 0015's triggers).
    op.add_column("media_buys", sa.Column("completion_announced_at", UTCDateTime(), nullable=True))
    op.execute(
        """
        UPDATE media_buys SET completion_announced_at = (
            SELECT MIN(e.created_at) FROM outbox_events e
            WHERE e.media_buy_id = media_buys.media_buy_id
              AND e.event_type = 'campaign.completed'
        )
        WHERE EXISTS (
            SELECT 1 FROM outbox_events e
            WHERE e.media_buy_id = media_buys.media_buy_id
              AND e.event_type = 'campaign.completed'
        )
        """
    )
    op.create_index(
        INDEX,
        "media_buys",
        ["end_time"],
        sqlite_where=sa.text(DUE),
        postgresql_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="media_buys")
    op.drop_column("media_buys", "completion_announced_at")
