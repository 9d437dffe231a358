"""Tenant management for publisher admins: tenants and their principals over the
admin API. Creation and token issuance go through ``services.tenants`` (one set of
rules for the CLI, bootstrap and the API); this module adds what only admins do —
listing, partial updates, soft deletes and revocation — each audited as ``admin``.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.db.engine import Database
from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox, open_all
from adcp_agent.services import audit, paging, tenants
from adcp_agent.services.admin_models import (
    PrincipalCreate,
    PrincipalUpdate,
    TenantCreate,
    TenantUpdate,
    merge_patch,
    redact_secrets,
)
from adcp_agent.services.paging import Page, PageRequest
from adcp_agent.services.tenants import seal_tenant_secrets

ACTOR = "admin"


def require_installed(registry: AdapterRegistry, ad_server: str) -> None:
    """A known ad server whose adapter plugin is not installed is the admin's choice to
    correct (422), not a server fault (the registry's CONFIGURATION_ERROR is a 500)."""
    installed = registry.names()
    if ad_server not in installed:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"ad_server '{ad_server}' has no adapter installed on this server.",
            field="ad_server",
            suggestion=f"Install the {ad_server} adapter plugin, or use one of: "
            f"{', '.join(installed)}.",
            details={"installed_adapters": installed},
        )


async def require_tenant(db: Database, tenant_id: str) -> Tenant:
    tenant = await tenants.get_tenant(db, tenant_id)
    if tenant is None:
        raise _tenant_not_found(tenant_id)
    return tenant


async def require_principal(db: Database, tenant_id: str, principal_id: str) -> Principal:
    await require_tenant(db, tenant_id)
    principal = await tenants.get_principal(db, tenant_id, principal_id)
    if principal is None:
        raise _principal_not_found(principal_id)
    return principal


async def count_tenants(db: Database) -> int:
    async with db.reading() as session:
        total = (
            await session.exec(
                select(func.count()).select_from(Tenant).where(col(Tenant.deleted_at).is_(None))
            )
        ).one()
    return int(total)


async def list_tenants(db: Database, page: PageRequest) -> Page[Tenant]:
    query = select(Tenant).where(col(Tenant.deleted_at).is_(None))
    if page.cursor:
        position = paging.decode_cursor("tenants", page.cursor)
        query = query.where(
            paging.after(Tenant.created_at, Tenant.tenant_id, position, descending=False)
        )
    query = query.order_by(col(Tenant.created_at), col(Tenant.tenant_id)).limit(page.limit + 1)
    async with db.reading() as session:
        rows = list((await session.exec(query)).all())
    return paging.build_page(rows, page.limit, "tenants", lambda t: (t.created_at, t.tenant_id))


async def create_tenant(
    db: Database, registry: AdapterRegistry, box: SecretBox, body: TenantCreate
) -> Tenant:
    require_installed(registry, body.ad_server)
    if body.tenant_id is not None:
        async with db.reading() as session:
            if await session.get(Tenant, body.tenant_id) is not None:
                raise AdcpError(
                    "CONFLICT", f"Tenant id '{body.tenant_id}' is taken.", field="tenant_id"
                )
    try:
        return await tenants.create_tenant(
            db,
            registry,
            name=body.name,
            subdomain=body.subdomain,
            ad_server=body.ad_server,
            adapter_config=body.adapter_config,
            features=body.features,
            publisher_domains=body.publisher_domains,
            public_discovery=body.public_discovery,
            tenant_id=body.tenant_id,
            actor=ACTOR,
            box=box,
        )
    except IntegrityError:  # a concurrent create took the id or subdomain first
        raise AdcpError(
            "CONFLICT", f"Tenant subdomain '{body.subdomain}' is taken.", field="subdomain"
        ) from None


def _audit_view(tenant: Tenant, fields: set[str]) -> dict[str, Any]:
    return redact_secrets({f: getattr(tenant, f) for f in sorted(fields)})


async def update_tenant(
    db: Database, registry: AdapterRegistry, box: SecretBox, tenant_id: str, body: TenantUpdate
) -> Tenant:
    given = body.model_fields_set
    async with db.transaction() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None or tenant.deleted_at is not None:
            raise _tenant_not_found(tenant_id)
        changed = set(given) | ({"adapter_config"} if "ad_server" in given else set())
        before = _audit_view(tenant, changed)
        if "ad_server" in given or "adapter_config" in given:
            ad_server = body.ad_server or tenant.ad_server
            # A different ad server shares nothing with the old one's settings.
            base = open_all(tenant.adapter_config, box) if ad_server == tenant.ad_server else {}
            require_installed(registry, ad_server)
            config = registry.validate_config(
                ad_server, merge_patch(base, body.adapter_config or {})
            )
            tenant.ad_server = ad_server
            tenant.adapter_config = seal_tenant_secrets(config.model_dump(mode="json"), box)
        if body.name is not None:
            tenant.name = body.name
        if "features" in given:
            features = body.features
            merged = merge_patch(tenant.features, features) if features is not None else {}
            tenant.features = seal_tenant_secrets(merged, box)
        if body.publisher_domains is not None:
            tenant.publisher_domains = body.publisher_domains
        if body.public_discovery is not None:
            tenant.public_discovery = body.public_discovery
        if not given:
            return tenant
        tenant.updated_at = utcnow()
        session.add(tenant)
        await audit.record(
            session,
            None,
            "tenant.update",
            actor=ACTOR,
            tenant_id=tenant_id,
            target_type="tenant",
            target_id=tenant_id,
            before=before,
            after=_audit_view(tenant, changed),
        )
    return tenant


async def delete_tenant(db: Database, tenant_id: str) -> Tenant:
    """Soft delete: the row stays for the audit trail, its buyers' tokens stop working
    at once (authentication checks ``deleted_at``) and its subdomain stays reserved."""
    async with db.transaction() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None or tenant.deleted_at is not None:
            raise _tenant_not_found(tenant_id)
        tenant.deleted_at = tenant.updated_at = utcnow()
        session.add(tenant)
        await audit.record(
            session,
            None,
            "tenant.delete",
            actor=ACTOR,
            tenant_id=tenant_id,
            target_type="tenant",
            target_id=tenant_id,
        )
    return tenant


async def list_principals(db: Database, tenant_id: str, page: PageRequest) -> Page[Principal]:
    await require_tenant(db, tenant_id)
    query = select(Principal).where(Principal.tenant_id == tenant_id)
    if page.cursor:
        position = paging.decode_cursor("principals", page.cursor)
        query = query.where(
            paging.after(Principal.created_at, Principal.principal_id, position, descending=False)
        )
    query = query.order_by(col(Principal.created_at), col(Principal.principal_id)).limit(
        page.limit + 1
    )
    async with db.reading() as session:
        rows = list((await session.exec(query)).all())
    return paging.build_page(
        rows, page.limit, "principals", lambda p: (p.created_at, p.principal_id)
    )


async def create_principal(
    db: Database, tenant_id: str, body: PrincipalCreate
) -> tenants.IssuedToken:
    await require_tenant(db, tenant_id)
    if body.principal_id is not None:
        # Principal ids are unique across the installation, not per tenant.
        async with db.reading() as session:
            if await session.get(Principal, body.principal_id) is not None:
                raise AdcpError(
                    "CONFLICT",
                    f"Principal id '{body.principal_id}' is taken.",
                    field="principal_id",
                )
    try:
        return await tenants.create_principal(
            db,
            tenant_id=tenant_id,
            name=body.name,
            token=body.access_token,
            principal_id=body.principal_id,
            platform_mappings=body.platform_mappings,
            actor=ACTOR,
        )
    except IntegrityError:  # a concurrent create took the id or the token first
        raise AdcpError(
            "CONFLICT", "That principal id or token is already in use.", field="principal_id"
        ) from None


async def update_principal(
    db: Database, tenant_id: str, principal_id: str, body: PrincipalUpdate
) -> Principal:
    await require_tenant(db, tenant_id)
    given = body.model_fields_set
    async with db.transaction() as session:
        principal = await _principal_for_update(session, tenant_id, principal_id)
        before = redact_secrets({f: getattr(principal, f) for f in sorted(given)})
        if body.name is not None:
            principal.name = body.name
        if "platform_mappings" in given:
            principal.platform_mappings = (
                merge_patch(principal.platform_mappings, body.platform_mappings)
                if body.platform_mappings is not None
                else {}
            )
        if not given:
            return principal
        session.add(principal)
        await audit.record(
            session,
            None,
            "principal.update",
            actor=ACTOR,
            tenant_id=tenant_id,
            target_type="principal",
            target_id=principal_id,
            before=before,
            after=redact_secrets({f: getattr(principal, f) for f in sorted(given)}),
        )
    return principal


async def revoke_principal(db: Database, tenant_id: str, principal_id: str) -> Principal:
    """Revocation is immediate and idempotent; the row stays for the audit trail."""
    await require_tenant(db, tenant_id)
    async with db.transaction() as session:
        principal = await _principal_for_update(session, tenant_id, principal_id)
        if principal.revoked_at is not None:
            return principal
        principal.revoked_at = utcnow()
        session.add(principal)
        await audit.record(
            session,
            None,
            "principal.revoke",
            actor=ACTOR,
            tenant_id=tenant_id,
            target_type="principal",
            target_id=principal_id,
        )
    return principal


async def rotate_principal_token(
    db: Database, tenant_id: str, principal_id: str, token: str | None
) -> tenants.IssuedToken:
    principal = await require_principal(db, tenant_id, principal_id)
    if principal.revoked_at is not None:
        # Rotation would quietly un-revoke the buyer; that must be a deliberate new principal.
        raise AdcpError(
            "INVALID_STATE",
            f"Principal '{principal_id}' is revoked; its token cannot be rotated.",
            field="principal_id",
            suggestion="Create a new principal for this buyer.",
        )
    try:
        return await tenants.set_principal_token(
            db, tenant_id=tenant_id, principal_id=principal_id, token=token, actor=ACTOR
        )
    except IntegrityError:
        raise AdcpError("CONFLICT", "That token is already in use.", field="access_token") from None


def principal_status(principal: Principal) -> Literal["active", "revoked"]:
    return "revoked" if principal.revoked_at is not None else "active"


async def _principal_for_update(
    session: AsyncSession, tenant_id: str, principal_id: str
) -> Principal:
    principal = await session.get(Principal, principal_id)
    if principal is None or principal.tenant_id != tenant_id:
        raise _principal_not_found(principal_id)
    return principal


def _tenant_not_found(tenant_id: str) -> AdcpError:
    return AdcpError("NOT_FOUND", f"Tenant '{tenant_id}' was not found.", field="tenant_id")


def _principal_not_found(principal_id: str) -> AdcpError:
    return AdcpError(
        "NOT_FOUND", f"Principal '{principal_id}' was not found.", field="principal_id"
    )
