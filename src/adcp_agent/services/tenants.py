"""Tenants (publishers) and principals (buyers): creation, tokens, lookups."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import col, select

from adcp_agent.adapter_protocol import AdapterRegistry
from adcp_agent.db.engine import Database
from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.sealing import SecretBox, names_secrets, seal_named
from adcp_agent.services import audit
from adcp_agent.services.accounts import new_default_account
from adcp_agent.services.admin_models import is_secret
from adcp_agent.services.identity import TOKEN_PREFIX, Caller, hash_token, new_id, new_token

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class IssuedToken:
    principal: Principal
    token: str  # shown once, never stored


def seal_tenant_secrets(value: dict[str, Any], box: SecretBox | None) -> dict[str, Any]:
    """``value`` (an ``adapter_config`` or ``features``) as stored: secret-named entries
    (``admin_models.is_secret``) sealed."""
    if box is not None:
        return seal_named(value, box, is_secret)  # type: ignore[no-any-return]
    if names_secrets(value, is_secret):
        raise RuntimeError("a tenant's secrets cannot be stored without the sealing key")
    return value


async def create_tenant(
    db: Database,
    registry: AdapterRegistry,
    *,
    name: str,
    subdomain: str,
    ad_server: str = "mock",
    adapter_config: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
    publisher_domains: list[str] | None = None,
    public_discovery: bool = True,
    tenant_id: str | None = None,
    actor: str = "admin",
    box: SecretBox | None = None,
) -> Tenant:
    """``box`` seals the secret-named entries of ``adapter_config`` and ``features``;
    a tenant that has some cannot be stored without it."""
    if not _SUBDOMAIN.match(subdomain):
        raise AdcpError(
            "VALIDATION_ERROR",
            "subdomain must be 1-63 lowercase letters, digits or hyphens.",
            field="subdomain",
        )
    config = registry.validate_config(ad_server, adapter_config or {})
    tenant = Tenant(
        tenant_id=tenant_id or new_id("tenant"),
        name=name,
        subdomain=subdomain,
        ad_server=ad_server,
        adapter_config=seal_tenant_secrets(config.model_dump(mode="json"), box),
        features=seal_tenant_secrets(features or {}, box),
        publisher_domains=publisher_domains or [],
        public_discovery=public_discovery,
    )
    async with db.transaction() as session:
        clash = (
            await session.exec(
                select(Tenant).where(
                    (Tenant.subdomain == subdomain) | (Tenant.tenant_id == tenant.tenant_id)
                )
            )
        ).first()
        if clash is not None:
            raise AdcpError(
                "CONFLICT", f"Tenant subdomain '{subdomain}' is taken.", field="subdomain"
            )
        session.add(tenant)
        await audit.record(
            session,
            None,
            "tenant.create",
            actor=actor,
            tenant_id=tenant.tenant_id,
            target_type="tenant",
            target_id=tenant.tenant_id,
            after={"name": name, "subdomain": subdomain, "ad_server": ad_server},
        )
    return tenant


def _check_token(token: str) -> None:
    if len(token) < 24:
        raise AdcpError(
            "VALIDATION_ERROR",
            "A custom token must be at least 24 characters.",
            field="access_token",
        )


async def create_principal(
    db: Database,
    *,
    tenant_id: str,
    name: str,
    token: str | None = None,
    role: str = "buyer",
    principal_id: str | None = None,
    platform_mappings: dict[str, Any] | None = None,
    actor: str = "admin",
) -> IssuedToken:
    token = token or new_token()
    _check_token(token)
    principal = Principal(
        principal_id=principal_id or new_id("principal"),
        tenant_id=tenant_id,
        name=name,
        token_hash=hash_token(token),
        token_hint=token[: len(TOKEN_PREFIX) + 4],
        role=role,
        platform_mappings=platform_mappings or {},
    )
    async with db.transaction() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is None or tenant.deleted_at is not None:
            raise AdcpError("NOT_FOUND", f"Tenant '{tenant_id}' was not found.", field="tenant_id")
        taken = (
            await session.exec(
                select(Principal).where(Principal.token_hash == principal.token_hash)
            )
        ).first()
        if taken is not None:
            raise AdcpError("CONFLICT", "That token is already in use.", field="access_token")
        session.add(principal)
        await session.flush()  # the default account references the principal row
        account, link = new_default_account(tenant_id, principal)
        session.add(account)
        await session.flush()
        session.add(link)
        await audit.record(
            session,
            None,
            "principal.create",
            actor=actor,
            tenant_id=tenant_id,
            target_type="principal",
            target_id=principal.principal_id,
            after={"name": name, "role": role},
        )
    return IssuedToken(principal, token)


async def set_principal_token(
    db: Database,
    *,
    tenant_id: str,
    principal_id: str,
    token: str | None = None,
    actor: str = "admin",
) -> IssuedToken:
    """Replace a principal's token (rotation); the old one stops working at once."""
    token = token or new_token()
    _check_token(token)
    async with db.transaction() as session:
        principal = await session.get(Principal, principal_id)
        if principal is None or principal.tenant_id != tenant_id:
            raise AdcpError(
                "NOT_FOUND", f"Principal '{principal_id}' was not found.", field="principal_id"
            )
        principal.token_hash = hash_token(token)
        principal.token_hint = token[: len(TOKEN_PREFIX) + 4]
        principal.revoked_at = None
        session.add(principal)
        await audit.record(
            session,
            None,
            "principal.rotate_token",
            actor=actor,
            tenant_id=tenant_id,
            target_type="principal",
            target_id=principal_id,
        )
    return IssuedToken(principal, token)


_TENANT_ROW = select(Tenant).where(col(Tenant.tenant_id) == bindparam("tenant"))


async def callers_tenant(db: Database, caller: Caller) -> Tenant:
    """The caller's tenant row as committed now, for reading (an instance no session
    knows: not for changing through one)."""
    return await tenant_row(db, caller.tenant_id)


async def tenant_row(db: Database, tenant_id: str) -> Tenant:
    """``callers_tenant`` by id."""
    found = await db.read_models(Tenant, _TENANT_ROW, {"tenant": tenant_id})
    if not found or found[0].deleted_at is not None:
        raise publisher_gone()
    return found[0]


def publisher_gone() -> AdcpError:
    """The caller's tenant was deleted after its token was checked."""
    return AdcpError("AUTH_INVALID", "The caller's publisher no longer exists.")


async def get_tenant(db: Database, tenant_id: str) -> Tenant | None:
    async with db.reading() as session:
        tenant = await session.get(Tenant, tenant_id)
    return tenant if tenant is not None and tenant.deleted_at is None else None


async def get_principal(db: Database, tenant_id: str, principal_id: str) -> Principal | None:
    async with db.reading() as session:
        principal = await session.get(Principal, principal_id)
    return principal if principal is not None and principal.tenant_id == tenant_id else None


async def touch_tenant(db: Database, tenant_id: str) -> None:
    async with db.transaction() as session:
        tenant = await session.get(Tenant, tenant_id)
        if tenant is not None:
            tenant.updated_at = utcnow()
            session.add(tenant)
