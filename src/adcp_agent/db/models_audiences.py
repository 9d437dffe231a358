"""First-party audiences (AdCP ``sync_audiences``) and the publisher's identity graph
they are matched against.

A buyer uploads CRM lists to one of its accounts: each member is a buyer-assigned
``external_id`` with hashed identifiers (SHA-256 e-mail or phone) and universal ids,
kept one row per identifier. The publisher loads the identifiers of its own users
(tenant management); a member matches when one of its identifiers is one of theirs.
Identifiers are pseudonymous personal data: they are never shown back over the API
and are deleted with their member or audience."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class Audience(SQLModel, table=True):
    """A buyer's audience on one of its accounts, with its last matching figures."""

    __tablename__ = "audiences"
    __table_args__ = (UniqueConstraint("tenant_id", "account_id", "audience_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", index=True, max_length=64)
    audience_id: str = Field(max_length=255)
    # What the ad servers see (a key-value), derived from account and audience id.
    seller_id: str = Field(max_length=40)
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=1000)
    audience_type: str | None = Field(default=None, max_length=20)
    tags: list[str] | None = Field(default=None, sa_column=json_column(nullable=True))
    consent_basis: str | None = Field(default=None, max_length=30)
    member_count: int = 0
    matched_count: int = 0
    # {id_type: [members submitted with it, members matched through it]}
    match_breakdown: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    # Share of the publisher's known users who are matched members (delivery's reach).
    reach_share: float = 0.0
    last_synced_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    deleted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class AudienceMember(SQLModel, table=True):
    """One identifier of one member of an audience."""

    __tablename__ = "audience_members"
    __table_args__ = (Index("ix_audience_members_identifier", "id_type", "value"),)

    audience_key: int = Field(foreign_key="audiences.id", primary_key=True)
    external_id: str = Field(primary_key=True, max_length=255)
    id_type: str = Field(primary_key=True, max_length=40)
    value: str = Field(primary_key=True, max_length=512)


class PublisherIdentity(SQLModel, table=True):
    """One identifier of one of the publisher's own users (its identity graph)."""

    __tablename__ = "publisher_identities"
    __table_args__ = (Index("ix_publisher_identities_user", "tenant_id", "user_key"),)

    tenant_id: str = Field(foreign_key="tenants.tenant_id", primary_key=True, max_length=64)
    id_type: str = Field(primary_key=True, max_length=40)
    value: str = Field(primary_key=True, max_length=512)
    user_key: str = Field(primary_key=True, max_length=255)
