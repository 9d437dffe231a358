"""Tables for the tenant-management API: the installation's admin key and settings, and
the inventory mirrored from each tenant's ad server."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import ts_column, utcnow

# The admin key row has a fixed primary key, so "initialise once" is enforced by the
# database itself: a second (or concurrent) init collides on the key instead of racing.
ADMIN_KEY_ID = "tenant_management"


class AdminApiKey(SQLModel, table=True):
    """The tenant-management API key. Only its SHA-256 is stored."""

    __tablename__ = "admin_api_keys"

    key_id: str = Field(primary_key=True, max_length=40)
    key_hash: str = Field(max_length=64)
    key_hint: str = Field(max_length=16, description="First characters, for humans.")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    rotated_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class InstallationSetting(SQLModel, table=True):
    """Facts about the installation that every server on the database must agree on
    (``secret_key_id``: which key sealed the stored secrets, ``adcp_agent.sealing``)."""

    __tablename__ = "installation_settings"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class SyncedInventoryItem(SQLModel, table=True):
    """A placement last seen on the tenant's ad server (ad unit, zone, station...)."""

    __tablename__ = "inventory_items"
    __table_args__ = (UniqueConstraint("tenant_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", index=True, max_length=64)
    item_id: str = Field(max_length=200)
    name: str = Field(max_length=300)
    kind: str = Field(max_length=40)
    parent_id: str | None = Field(default=None, max_length=200)
    synced_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
