"""accounts: the buyer's governance agent; media_buys and signal activations: what it
approved

Revision ID: 0034_governance
Revises: 0033_advertiser_industry

AdCP 3.1 ``sync_governance`` binds one governance agent to an account (its URL and the
credential this agent presents to it, sealed); every buy on the account is then
checked with it (``check_governance``) before anything is booked or changed. A buy
keeps the governance plan it was booked under, the agent's governance context and the
id of the check that approved it; an activation keeps its context.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0034_governance"
down_revision: str | None = "0033_advertiser_industry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("governance_url", sa.String(length=2048), nullable=True))
    op.add_column("accounts", sa.Column("governance_scheme", sa.String(length=20), nullable=True))
    op.add_column(
        "accounts",
        sa.Column("governance_credentials", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column("media_buys", sa.Column("plan_id", sa.String(length=255), nullable=True))
    op.add_column(
        "media_buys",
        sa.Column("governance_context", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )
    op.add_column(
        "media_buys", sa.Column("governance_check_id", sa.String(length=255), nullable=True)
    )
    op.add_column(
        "signal_activations",
        sa.Column("governance_context", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("signal_activations", "governance_context")
    for column in ("governance_check_id", "governance_context", "plan_id"):
        op.drop_column("media_buys", column)
    for column in ("governance_credentials", "governance_scheme", "governance_url"):
        op.drop_column("accounts", column)
