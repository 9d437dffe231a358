"""push_notification_configs: a sync_creatives config, for the creatives it synced

Revision ID: 0032_creative_push
Revises: 0031_reporting_webhooks

AdCP 3.1 sync_creatives takes a ``push_notification_config``: the buyer hears the
publisher's review decisions (creative.approved / creative.rejected) on the creatives
it synced. Such a config belongs to no media buy (``media_buy_id`` becomes nullable)
and names the creatives it covers (``creative_ids``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0032_creative_push"
down_revision: str | None = "0031_reporting_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite a batch copies the table (it has no triggers to lose).
    with op.batch_alter_table("push_notification_configs") as batch:
        batch.alter_column(
            "media_buy_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            nullable=True,
        )
        batch.add_column(sa.Column("creative_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM push_notification_configs WHERE media_buy_id IS NULL")
    with op.batch_alter_table("push_notification_configs") as batch:
        batch.drop_column("creative_ids")
        batch.alter_column(
            "media_buy_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            nullable=False,
        )
