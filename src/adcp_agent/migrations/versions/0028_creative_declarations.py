"""creatives: industry identifiers and provenance, as the buyer declares them

Revision ID: 0028_creative_declarations
Revises: 0027_buy_history

AdCP 3.1 sync_creatives carries a creative's ``industry_identifiers`` (Ad-ID, ISCI,
Clearcast clock number, IDcrea: what broadcast traffic and clearance key on) and its
``provenance`` (how it was made — AI tools, human oversight, disclosure, C2PA). They
were dropped; they are kept now, shown to the publisher's reviewers and echoed by
list_creatives. Creatives synced before carry neither (NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_creative_declarations"
down_revision: str | None = "0027_buy_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("creatives", sa.Column("industry_identifiers", sa.JSON(), nullable=True))
    op.add_column("creatives", sa.Column("provenance", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("creatives", "provenance")
    op.drop_column("creatives", "industry_identifiers")
