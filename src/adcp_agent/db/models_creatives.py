"""The buyer's creative library and its assignment to packages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class Creative(SQLModel, table=True):
    __tablename__ = "creatives"
    __table_args__ = (
        UniqueConstraint("tenant_id", "principal_id", "creative_id"),
        # list_creatives: a buyer's library by creation (the default) or change time
        Index("ix_creatives_created", "tenant_id", "principal_id", "created_at"),
        Index("ix_creatives_listing", "tenant_id", "principal_id", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", max_length=64)
    creative_id: str = Field(max_length=128)  # the buyer's id
    name: str = Field(max_length=300)
    format_id: str = Field(max_length=128)
    kind: str = Field(max_length=20)  # display | video | audio
    assets: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    click_url: str | None = Field(default=None, max_length=2048)
    tags: list[str] = Field(default_factory=list, sa_column=json_column())
    # processing | pending_review | approved | suspended | rejected | archived
    status: str = Field(max_length=20, index=True)
    rejection_reason: str | None = None
    content_hash: str = Field(max_length=64)
    # AdCP's industry identifiers (Ad-ID, ISCI, Clearcast clock, IDcrea) and provenance
    # (AI generation, disclosure, C2PA...), as the buyer declared them; None when not.
    industry_identifiers: list[dict[str, Any]] | None = Field(
        default=None, sa_column=json_column(nullable=True)
    )
    provenance: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    # Ad-server creative ids by adapter name, once pushed ({"mock": "mock_cr_..."}).
    external_ids: dict[str, str] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class CreativeAssignment(SQLModel, table=True):
    __tablename__ = "creative_assignments"
    __table_args__ = (
        UniqueConstraint("creative_pk", "package_id"),
        # push_pending: a tenant's assignments the ad server does not hold yet
        Index("ix_creative_assignments_unpushed", "tenant_id", "pushed"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    creative_pk: int = Field(foreign_key="creatives.id", index=True)
    package_id: str = Field(foreign_key="packages.package_id", index=True, max_length=64)
    weight: float | None = None
    # True once the ad server holds the association (only approved creatives are pushed).
    pushed: bool = False
    assigned_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
