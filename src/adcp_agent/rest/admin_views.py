"""What the tenant-management API returns. Every view that carries configuration goes
through ``redact_secrets``, so no response can echo an ad-server credential."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from adcp_agent.db.models import AuditLog, Principal, Tenant
from adcp_agent.services.admin_models import redact_secrets
from adcp_agent.services.inventory_sync import SyncReport
from adcp_agent.services.tenant_admin import principal_status

SHOWN_ONCE = "Save this secret now: it is stored only as a hash and cannot be shown again."


class TenantView(BaseModel):
    tenant_id: str
    name: str
    subdomain: str
    ad_server: str
    adapter_config: dict[str, Any]
    features: dict[str, Any]
    publisher_domains: list[str]
    public_discovery: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantView:
        return cls(
            tenant_id=tenant.tenant_id,
            name=tenant.name,
            subdomain=tenant.subdomain,
            ad_server=tenant.ad_server,
            adapter_config=redact_secrets(tenant.adapter_config),
            features=redact_secrets(tenant.features),
            publisher_domains=tenant.publisher_domains,
            public_discovery=tenant.public_discovery,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            deleted_at=tenant.deleted_at,
        )


class PrincipalView(BaseModel):
    principal_id: str
    tenant_id: str
    name: str
    role: str
    status: Literal["active", "revoked"]
    token_hint: str
    platform_mappings: dict[str, Any]
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, principal: Principal) -> PrincipalView:
        return cls(
            principal_id=principal.principal_id,
            tenant_id=principal.tenant_id,
            name=principal.name,
            role=principal.role,
            status=principal_status(principal),
            token_hint=principal.token_hint,
            platform_mappings=redact_secrets(principal.platform_mappings),
            created_at=principal.created_at,
            revoked_at=principal.revoked_at,
        )


class IssuedPrincipalView(PrincipalView):
    access_token: str
    message: str = SHOWN_ONCE


class TenantPage(BaseModel):
    tenants: list[TenantView]
    next_cursor: str | None
    has_more: bool


class PrincipalPage(BaseModel):
    principals: list[PrincipalView]
    next_cursor: str | None
    has_more: bool


class AuditLogView(BaseModel):
    id: int
    created_at: datetime
    tenant_id: str | None
    principal_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    success: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any]

    @classmethod
    def of(cls, row: AuditLog) -> AuditLogView:
        return cls(
            id=row.id or 0,
            created_at=row.created_at,
            tenant_id=row.tenant_id,
            principal_id=row.principal_id,
            actor=row.actor,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            success=row.success,
            before=redact_secrets(row.before),
            after=redact_secrets(row.after),
            details=redact_secrets(row.details),
        )


class AuditLogPage(BaseModel):
    audit_logs: list[AuditLogView]
    next_cursor: str | None
    has_more: bool


class ApiKeyIssued(BaseModel):
    api_key: str
    header: str
    message: str = SHOWN_ONCE


class SyncReportView(BaseModel):
    tenant_id: str
    ad_server: str
    synced_at: datetime
    total: int
    created: int
    updated: int
    by_kind: dict[str, int]

    @classmethod
    def of(cls, report: SyncReport) -> SyncReportView:
        return cls(
            tenant_id=report.tenant_id,
            ad_server=report.ad_server,
            synced_at=report.synced_at,
            total=report.total,
            created=report.created,
            updated=report.updated,
            by_kind=report.by_kind,
        )


class AdminHealth(BaseModel):
    status: Literal["healthy", "degraded"]
    database: Literal["connected", "unreachable"]
    version: str
    tenants_count: int | None
