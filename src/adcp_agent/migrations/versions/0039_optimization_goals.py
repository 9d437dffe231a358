"""packages.optimization_goals: AdCP metric optimization goals (clicks, views,
completed views; a cost per unit or a rate to reach) the package's delivery pursues

Revision ID: 0039_optimization_goals
Revises: 0038_audiences
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039_optimization_goals"
down_revision: str | None = "0038_audiences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("packages", sa.Column("optimization_goals", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("packages", "optimization_goals")
