"""Billing accounts: who pays for a buy. A principal uses the accounts linked to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_principal_id", "natural_key"),)

    account_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    name: str = Field(max_length=200)
    advertiser: str | None = Field(default=None, max_length=200)
    # active | pending_approval | rejected | payment_required | suspended | closed
    status: str = Field(default="active", max_length=20)
    brand_domain: str | None = Field(default=None, max_length=253)
    brand_id: str | None = Field(default=None, max_length=128)
    operator: str | None = Field(default=None, max_length=253)
    billing: str = Field(default="operator", max_length=20)  # operator | agent | advertiser
    billing_entity: dict[str, Any] | None = Field(
        default=None, sa_column=json_column(nullable=True)
    )
    payment_terms: str | None = Field(default=None, max_length=20)
    credit_limit: float | None = None
    currency: str = Field(default="USD", max_length=3)
    sandbox: bool = False
    is_default: bool = False
    # The principal that declared it (sync_accounts) or was created with it (default).
    owner_principal_id: str | None = Field(default=None, max_length=64)
    # brand_domain|brand_id|operator|sandbox, for buyer-declared accounts.
    natural_key: str | None = Field(default=None, max_length=600)
    setup_message: str | None = None
    # The buyer's governance agent (sync_governance): every buy on the account is checked
    # with it. The credential this agent presents to it is sealed (adcp_agent.sealing).
    governance_url: str | None = Field(default=None, max_length=2048)
    governance_scheme: str | None = Field(default=None, max_length=20)  # Bearer
    governance_credentials: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class AccountPrincipal(SQLModel, table=True):
    """Which principals may act on an account (many-to-many)."""

    __tablename__ = "account_principals"

    account_id: str = Field(foreign_key="accounts.account_id", primary_key=True, max_length=64)
    principal_id: str = Field(
        foreign_key="principals.principal_id", primary_key=True, max_length=64
    )
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
