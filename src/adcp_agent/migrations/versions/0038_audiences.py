"""audiences, audience_members, publisher_identities: first-party audiences (AdCP
sync_audiences) matched against the publisher's identity graph

Revision ID: 0038_audiences
Revises: 0037_governance_delivery

A buyer uploads CRM lists (hashed e-mails and phones, universal ids) to an account;
the publisher loads its own users' identifiers; members match on a shared identifier.
Packages target audiences with targeting_overlay.audience_include/audience_exclude.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from adcp_agent.db.types import UTCDateTime

revision: str = "0038_audiences"
down_revision: str | None = "0037_governance_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "audiences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", _text(64), nullable=False),
        sa.Column("account_id", _text(64), nullable=False),
        sa.Column("audience_id", _text(255), nullable=False),
        sa.Column("seller_id", _text(40), nullable=False),
        sa.Column("name", _text(255), nullable=True),
        sa.Column("description", _text(1000), nullable=True),
        sa.Column("audience_type", _text(20), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("consent_basis", _text(30), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("matched_count", sa.Integer(), nullable=False),
        sa.Column("match_breakdown", sa.JSON(), nullable=False),
        sa.Column("reach_share", sa.Float(), nullable=False),
        sa.Column("last_synced_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "account_id", "audience_id"),
    )
    op.create_index("ix_audiences_account_id", "audiences", ["account_id"])
    op.create_table(
        "audience_members",
        sa.Column("audience_key", sa.Integer(), nullable=False),
        sa.Column("external_id", _text(255), nullable=False),
        sa.Column("id_type", _text(40), nullable=False),
        sa.Column("value", _text(512), nullable=False),
        sa.ForeignKeyConstraint(["audience_key"], ["audiences.id"]),
        sa.PrimaryKeyConstraint("audience_key", "external_id", "id_type", "value"),
    )
    op.create_index("ix_audience_members_identifier", "audience_members", ["id_type", "value"])
    op.create_table(
        "publisher_identities",
        sa.Column("tenant_id", _text(64), nullable=False),
        sa.Column("id_type", _text(40), nullable=False),
        sa.Column("value", _text(512), nullable=False),
        sa.Column("user_key", _text(255), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.PrimaryKeyConstraint("tenant_id", "id_type", "value", "user_key"),
    )
    op.create_index(
        "ix_publisher_identities_user", "publisher_identities", ["tenant_id", "user_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_publisher_identities_user", table_name="publisher_identities")
    op.drop_table("publisher_identities")
    op.drop_index("ix_audience_members_identifier", table_name="audience_members")
    op.drop_table("audience_members")
    op.drop_index("ix_audiences_account_id", table_name="audiences")
    op.drop_table("audiences")
