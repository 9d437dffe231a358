"""idempotency records: what the claimed attempt is creating

Revision ID: 0022_claim_subject
Revises: 0021_guaranteed_reserve

A create_media_buy claims its idempotency key in the transaction that commits its
provisional buy. A server stopped before the answer leaves the claim unanswered; a
retry with the same key retakes it once it is stale. The claim now names the buy its
attempt provisioned (``subject_id``), so the retry first releases that buy — cancelling
the order it may have made — instead of booking again beside it while it still holds
inventory (until the stranded-booking sweep, minutes later).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_claim_subject"
down_revision: str | None = "0021_guaranteed_reserve"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "idempotency_records", sa.Column("subject_id", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("idempotency_records", "subject_id")
