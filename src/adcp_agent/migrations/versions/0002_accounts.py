"""accounts and account_principals

Revision ID: 0002_accounts
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adcp_agent.db.types

revision: str = "0002_accounts"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", _str(length=64), nullable=False),
        sa.Column("tenant_id", _str(length=64), nullable=False),
        sa.Column("name", _str(length=200), nullable=False),
        sa.Column("advertiser", _str(length=200), nullable=True),
        sa.Column("status", _str(length=20), nullable=False),
        sa.Column("brand_domain", _str(length=253), nullable=True),
        sa.Column("brand_id", _str(length=128), nullable=True),
        sa.Column("operator", _str(length=253), nullable=True),
        sa.Column("billing", _str(length=20), nullable=False),
        sa.Column("billing_entity", sa.JSON(), nullable=True),
        sa.Column("payment_terms", _str(length=20), nullable=True),
        sa.Column("credit_limit", sa.Float(), nullable=True),
        sa.Column("currency", _str(length=3), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("owner_principal_id", _str(length=64), nullable=True),
        sa.Column("natural_key", _str(length=600), nullable=True),
        sa.Column("setup_message", _str(), nullable=True),
        sa.Column("created_at", adcp_agent.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", adcp_agent.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.PrimaryKeyConstraint("account_id"),
        sa.UniqueConstraint("tenant_id", "owner_principal_id", "natural_key"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "account_principals",
        sa.Column("account_id", _str(length=64), nullable=False),
        sa.Column("principal_id", _str(length=64), nullable=False),
        sa.Column("tenant_id", _str(length=64), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.principal_id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.PrimaryKeyConstraint("account_id", "principal_id"),
    )
    with op.batch_alter_table("account_principals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_principals_tenant_id"), ["tenant_id"], unique=False
        )

    # Principals created before accounts existed get their default account now.
    conn = op.get_bind()
    principals = conn.execute(
        sa.text("SELECT principal_id, tenant_id, name, created_at FROM principals")
    ).fetchall()
    for principal_id, tenant_id, name, created_at in principals:
        account_id = f"acc_{principal_id}"[:64]
        conn.execute(
            sa.text(
                "INSERT INTO accounts (account_id, tenant_id, name, advertiser, status, "
                "billing, currency, sandbox, is_default, owner_principal_id, created_at, "
                "updated_at) VALUES (:a, :t, :n, :adv, 'active', 'operator', 'USD', false, "
                "true, :p, :c, :c)"
            ),
            {
                "a": account_id,
                "t": tenant_id,
                "n": f"{name} (default)",
                "adv": name,
                "p": principal_id,
                "c": created_at,
            },
        )
        conn.execute(
            sa.text(
                "INSERT INTO account_principals (account_id, principal_id, tenant_id) "
                "VALUES (:a, :p, :t)"
            ),
            {"a": account_id, "p": principal_id, "t": tenant_id},
        )


def downgrade() -> None:
    op.drop_table("account_principals")
    op.drop_table("accounts")
