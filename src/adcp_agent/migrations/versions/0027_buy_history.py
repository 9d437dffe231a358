"""audit rows: the revision of a media buy each change produced

Revision ID: 0027_buy_history
Revises: 0026_cancellation

get_media_buys' ``include_history`` returns a buy's last N revisions (revision number,
time, actor, action, summary). Every change that bumps a buy's revision already writes
an audit row in the same transaction; the row now keeps the revision it produced, and an
index on (target_id, revision) finds a buy's latest ones.

Rows written before this migration are numbered where that is certain: each of the
actions below bumped the revision exactly once, so when a buy's count of them equals its
revision, its n-th such row (by id) produced revision n. A buy whose count differs keeps
unnumbered rows, and its history starts with its next change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_buy_history"
down_revision: str | None = "0026_cancellation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_BUMPS = (
    "'media_buy.create', 'media_buy.approve', 'media_buy.reject', 'media_buy.sync', "
    "'media_buy.force_flight', 'media_buy.update'"
)


def _bumped(alias: str) -> str:
    """``alias`` is an audit row of a change that bumped a media buy's revision."""
    return f"{alias}.target_type = 'media_buy' AND {alias}.action IN ({_BUMPS})"


def upgrade() -> None:
    op.add_column("audit_logs", sa.Column("revision", sa.Integer(), nullable=True))
    op.create_index("ix_audit_logs_target_revision", "audit_logs", ["target_id", "revision"])
    op.execute(
        f"""
        UPDATE audit_logs SET revision = (
            SELECT COUNT(*) FROM audit_logs AS earlier
            WHERE {_bumped("earlier")}
              AND earlier.target_id = audit_logs.target_id AND earlier.id <= audit_logs.id
        )
        WHERE {_bumped("audit_logs")} AND target_id IN (
            SELECT b.media_buy_id FROM media_buys AS b WHERE b.revision = (
                SELECT COUNT(*) FROM audit_logs AS r
                WHERE {_bumped("r")} AND r.target_id = b.media_buy_id
            )
        )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_audit_logs_target_revision", table_name="audit_logs")
    op.drop_column("audit_logs", "revision")
