"""Tokens and the caller identity they resolve to.

Tokens are random 256-bit secrets; only their SHA-256 is stored. Lookup is by the hash
(an index probe, so timing reveals nothing about the secret) and the stored hash is then
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import col, select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.models_accounts import Account, AccountPrincipal
from adcp_agent.errors import AdcpError

TOKEN_PREFIX = "adcp_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Caller:
    """Who is calling: always a tenant; a principal when authenticated."""

    tenant_id: str
    tenant_name: str
    principal_id: str | None = None
    principal_name: str | None = None
    role: str = "buyer"
    # May see and drive comply_test_controller: the tenant is flagged for testing or
    # the principal may use a sandbox account. Read with the token, in the same query.
    sandbox: bool = False
    # The tenant's catalog stamp as this call found it (see catalog.tenant_catalog);
    # None when unknown, which bypasses the cache.
    catalog_version: int | None = None

    @property
    def authenticated(self) -> bool:
        return self.principal_id is not None

    @property
    def actor(self) -> str:
        return f"principal:{self.principal_id}" if self.principal_id else "anonymous"

    def require_principal(self) -> str:
        if self.principal_id is None:
            raise AdcpError(
                "AUTH_REQUIRED",
                "This tool needs an authenticated buyer.",
                suggestion="Send 'Authorization: Bearer <token>' or 'x-adcp-auth: <token>'.",
            )
        return self.principal_id


async def authenticate(db: Database, token: str) -> Caller:
    """Resolve a presented token to its principal and tenant, or raise AUTH_INVALID."""
    token = token.strip()
    if not token:
        raise AdcpError("AUTH_REQUIRED", "An empty token was sent.")
    digest = hash_token(token)
    # Every authenticated call pays for this lookup, so it reads just the columns it
    # needs over a plain connection: a third of the cost of loading both ORM rows.
    rows = await db.read(_TOKEN_LOOKUP, {"digest": digest})
    row = rows[0] if rows else None
    if row is None:
        raise _invalid()
    if (
        not hmac.compare_digest(row.token_hash, digest)
        or row.revoked_at is not None
        or row.deleted_at is not None
    ):
        raise _invalid()
    return Caller(
        tenant_id=row.tenant_id,
        tenant_name=row.tenant_name,
        principal_id=row.principal_id,
        principal_name=row.principal_name,
        role=row.role,
        sandbox=bool((row.features or {}).get("sandbox")) or bool(row.sandbox_account),
        catalog_version=row.catalog_version,
    )


_SANDBOX_ACCOUNT = (
    core_select(col(Account.account_id))
    .join(AccountPrincipal, col(AccountPrincipal.account_id) == col(Account.account_id))
    .where(
        col(Account.tenant_id) == col(Principal.tenant_id),
        col(AccountPrincipal.principal_id) == col(Principal.principal_id),
        col(Account.sandbox).is_(True),
    )
    .correlate(Principal)
    .exists()
)

_TOKEN_LOOKUP = (
    core_select(
        col(Principal.principal_id),
        col(Principal.name).label("principal_name"),
        col(Principal.role),
        col(Principal.token_hash),
        col(Principal.revoked_at),
        col(Tenant.tenant_id),
        col(Tenant.name).label("tenant_name"),
        col(Tenant.deleted_at),
        col(Tenant.features),
        col(Tenant.catalog_version),
        _SANDBOX_ACCOUNT.label("sandbox_account"),
    )
    .join(Tenant, col(Tenant.tenant_id) == col(Principal.tenant_id))
    .where(col(Principal.token_hash) == bindparam("digest"))
)


async def refreshed(db: Database, caller: Caller) -> Caller:
    """``caller`` with its tenant's current ``catalog_version``: for a caller resolved
    once and used for many tool calls (a chat run), so a catalog change made meanwhile
    is seen by the next call."""
    rows = await db.read(_CATALOG_VERSION, {"tenant_id": caller.tenant_id})
    return replace(caller, catalog_version=rows[0].catalog_version if rows else None)


_CATALOG_VERSION = core_select(col(Tenant.catalog_version)).where(
    col(Tenant.tenant_id) == bindparam("tenant_id")
)


async def anonymous(db: Database, tenant_hint: str | None) -> Caller:
    """The caller for unauthenticated discovery: the named (or default) tenant, only
    if that tenant allows public discovery."""
    if not tenant_hint:
        raise AdcpError(
            "AUTH_REQUIRED",
            "Authentication is required.",
            suggestion="Send 'Authorization: Bearer <token>' or 'x-adcp-auth: <token>'.",
        )
    async with db.reading() as session:
        tenant = (
            await session.exec(
                select(Tenant).where(
                    (Tenant.tenant_id == tenant_hint) | (Tenant.subdomain == tenant_hint)
                )
            )
        ).first()
    if tenant is None or tenant.deleted_at is not None or not tenant.public_discovery:
        raise AdcpError(
            "AUTH_REQUIRED",
            "Authentication is required for this publisher.",
            suggestion="Send 'Authorization: Bearer <token>' or 'x-adcp-auth: <token>'.",
        )
    return Caller(
        tenant_id=tenant.tenant_id,
        tenant_name=tenant.name,
        catalog_version=tenant.catalog_version,
    )


def _invalid() -> AdcpError:
    return AdcpError(
        "AUTH_INVALID",
        "The token was not recognised or has been revoked.",
        suggestion="Ask the publisher for a new token; do not retry with the same one.",
    )


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The presented token: ``Authorization: Bearer <token>`` or the seed's
    ``x-adcp-auth: <token>``. Header names are looked up lowercase (Starlette's headers
    and the MCP middleware's dict both answer to that)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return headers.get("x-adcp-auth")


def tenant_hint(headers: Mapping[str, str], default: str | None) -> str | None:
    """Which publisher an anonymous caller means: ``x-adcp-tenant``, else the Host's
    subdomain, else the configured default."""
    if headers.get("x-adcp-tenant"):
        return headers["x-adcp-tenant"]
    host = (headers.get("host") or "").split(":")[0]
    labels = host.split(".")
    if len(labels) > 2 and not host.replace(".", "").isdigit():
        return labels[0]
    return default
