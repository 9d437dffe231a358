"""buy listing: an index that serves get_media_buys pages in order

Revision ID: 0012_buy_listing
Revises: 0009_perf

get_media_buys pages a principal's buys newest first in SQL. With this index the
database walks the principal's buys in that order and stops at the page's end instead
of sorting all of them, and answers the status/account/sandbox filters and the total
count from the index alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_buy_listing"
down_revision: str | None = "0009_perf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_media_buys_listing",
        "media_buys",
        [
            "tenant_id",
            "principal_id",
            "created_at",
            "media_buy_id",
            "state",
            "start_time",
            "end_time",
            "sandbox",
            "account_id",
        ],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_media_buys_listing", table_name="media_buys")
