"""secrets at rest: webhook secrets and push credentials are stored sealed

Revision ID: 0019_sealed_secrets
Revises: 0018_update_lease

Webhook signing secrets and the token and credentials of buyers' push notification
configs were stored as given. They are now sealed (``adcp_agent.sealing``: encrypted
under a key kept outside the database), which makes them longer: the columns widen. ``installation_settings`` records which
key sealed them, so a server started with another key refuses to run instead of
failing every delivery. Rows stored before are sealed at the first start after this
migration (``services.sealed_secrets.adopt_key``): a migration has no key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0019_sealed_secrets"
down_revision: str | None = "0018_update_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDER = [
    ("webhook_endpoints", "secret", 200, 1024, False),
    ("push_notification_configs", "token", 4096, 8192, True),
    ("push_notification_configs", "auth_credentials", 4096, 8192, True),
]


def upgrade() -> None:
    op.create_table(
        "installation_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    # On SQLite a batch copies each table (neither has triggers to lose).
    for table, column, old, new, nullable in WIDER:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.String(new),
                existing_type=sa.String(old),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    # The columns stay wide: sealed values would not fit the old widths (and the code
    # before this migration cannot open them: restore the secrets before going back).
    op.drop_table("installation_settings")
