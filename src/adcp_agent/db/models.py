"""Tables. Every tenant-owned row carries ``tenant_id``; services always filter on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import json_column, ts_column, utcnow


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    tenant_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    subdomain: str = Field(max_length=63, unique=True, index=True)
    ad_server: str = Field(default="mock", max_length=40)
    adapter_config: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    features: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    publisher_domains: list[str] = Field(default_factory=list, sa_column=json_column())
    public_discovery: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    deleted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    # Bumped by database triggers on every catalog write (migration 0011): the key of
    # the in-process catalog cache. Never written by the application.
    catalog_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Principal(SQLModel, table=True):
    """A buyer identity. Only the SHA-256 of its token is stored."""

    __tablename__ = "principals"

    principal_id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    token_hint: str = Field(max_length=16, description="First characters, for humans.")
    role: str = Field(default="buyer", max_length=20)
    platform_mappings: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class Product(SQLModel, table=True):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    product_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    description: str
    keywords: list[str] = Field(default_factory=list, sa_column=json_column())
    channels: list[str] = Field(default_factory=list, sa_column=json_column())
    delivery_type: str = Field(max_length=20)  # guaranteed | non_guaranteed
    format_ids: list[str] = Field(default_factory=list, sa_column=json_column())
    property_ids: list[str] = Field(default_factory=list, sa_column=json_column())
    countries: list[str] = Field(default_factory=list, sa_column=json_column())
    pricing_options: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column())
    targeting: list[str] = Field(default_factory=list, sa_column=json_column())
    inventory: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    implementation_config: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    is_public: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class CreativeFormat(SQLModel, table=True):
    __tablename__ = "creative_formats"
    __table_args__ = (UniqueConstraint("tenant_id", "format_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    format_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    description: str = ""
    kind: str = Field(max_length=20)  # display | video | audio
    width: int | None = None
    height: int | None = None
    durations_s: list[int] = Field(default_factory=list, sa_column=json_column())
    mime_types: list[str] = Field(default_factory=list, sa_column=json_column())
    max_file_kb: int | None = None


class AuthorizedProperty(SQLModel, table=True):
    __tablename__ = "authorized_properties"
    __table_args__ = (UniqueConstraint("tenant_id", "property_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    property_id: str = Field(max_length=128)
    property_type: str = Field(max_length=40)
    name: str = Field(max_length=200)
    publisher_domain: str = Field(max_length=253)
    identifiers: list[dict[str, str]] = Field(default_factory=list, sa_column=json_column())
    tags: list[str] = Field(default_factory=list, sa_column=json_column())


class Signal(SQLModel, table=True):
    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("tenant_id", "signal_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    signal_id: str = Field(max_length=128)
    name: str = Field(max_length=200)
    description: str
    signal_type: str = Field(max_length=20)  # audience | contextual | geo
    keywords: list[str] = Field(default_factory=list, sa_column=json_column())
    reach: int = 0
    coverage_percentage: float = 0.0
    cpm: float = 0.0
    data_provider: str = Field(default="", max_length=200)


class SignalActivation(SQLModel, table=True):
    __tablename__ = "signal_activations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "principal_id", "signal_id", "destination_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    signal_id: str = Field(max_length=128)
    destination_key: str = Field(max_length=300)
    destination: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    activation_key: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    # The governance agent's context for a governed activation (activate_signal).
    governance_context: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_tenant_created", "tenant_id", "created_at"),
        # a media buy's revision history (get_media_buys include_history)
        Index("ix_audit_logs_target_revision", "target_id", "revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str | None = Field(default=None, max_length=64)
    principal_id: str | None = Field(default=None, max_length=64)
    actor: str = Field(max_length=100)  # principal:<id> | admin | system
    action: str = Field(max_length=100, index=True)
    target_type: str = Field(default="", max_length=40)
    target_id: str = Field(default="", max_length=128)
    success: bool = True
    before: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    # the target's revision this change produced (media buys), None for the rest
    revision: int | None = None
