"""Sandbox state kept by the test controller: one-shot response-arm directives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from adcp_agent.db.types import ts_column, utcnow


class SandboxDirective(SQLModel, table=True):
    """``force_<tool>_arm``: the next matching call of ``tool`` by this principal on this
    sandbox account answers with ``arm`` instead of running. A row exists only until it
    fires (deleted by the call that consumes it, so it fires exactly once, whatever the
    number of server processes); registering again replaces it."""

    __tablename__ = "sandbox_directives"
    __table_args__ = (UniqueConstraint("tenant_id", "principal_id", "account_id", "tool"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.tenant_id", max_length=64)
    principal_id: str = Field(foreign_key="principals.principal_id", max_length=64)
    account_id: str = Field(foreign_key="accounts.account_id", max_length=64)
    tool: str = Field(max_length=40)  # create_media_buy | get_products | get_signals
    arm: str = Field(max_length=20)  # submitted | input-required
    task_id: str | None = Field(default=None, max_length=64)
    message: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
