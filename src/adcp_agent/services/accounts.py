"""Billing accounts: resolution on every buying call, buyer-declared provisioning
(sync_accounts) and the tenant's approval policy.

An account is visible to a principal only when linked to it; anything else is reported
as ACCOUNT_NOT_FOUND so account ids of other buyers never leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Principal, Tenant
from adcp_agent.db.models_accounts import Account, AccountPrincipal
from adcp_agent.db.types import utcnow
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, buy_events
from adcp_agent.services.identity import Caller, new_id

STATUSES = ("active", "pending_approval", "rejected", "payment_required", "suspended", "closed")
PAYMENT_TERMS = ("net_15", "net_30", "net_45", "net_60", "net_90", "prepay")
BILLING = ("operator", "agent", "advertiser")


def natural_key(brand_domain: str, brand_id: str | None, operator: str, sandbox: bool) -> str:
    return f"{brand_domain}|{brand_id or ''}|{operator}|{int(sandbox)}"


def new_default_account(tenant_id: str, principal: Principal) -> tuple[Account, AccountPrincipal]:
    """The account a principal's flat (seed-003) calls bill to when they name none."""
    account = Account(
        account_id=new_id("acc"),
        tenant_id=tenant_id,
        name=f"{principal.name} (default)",
        advertiser=principal.name,
        status="active",
        billing="operator",
        is_default=True,
        owner_principal_id=principal.principal_id,
    )
    link = AccountPrincipal(
        account_id=account.account_id, principal_id=principal.principal_id, tenant_id=tenant_id
    )
    return account, link


# Every account-taking tool runs this: built once (building and cache-keying it per
# call cost more than running it).
_LINKED = (
    select(Account)
    .join(AccountPrincipal, AccountPrincipal.account_id == Account.account_id)
    .where(
        Account.tenant_id == bindparam("tenant"),
        AccountPrincipal.principal_id == bindparam("principal"),
    )
    .order_by(Account.created_at, Account.account_id)
)


async def _linked(session: AsyncSession, caller: Caller) -> list[Account]:
    params = {"tenant": caller.tenant_id, "principal": caller.principal_id}
    return list((await session.exec(_LINKED, params=params)).all())


async def _read_linked(db: Database, caller: Caller) -> list[Account]:
    """``_linked`` as committed now, outside any transaction."""
    params = {"tenant": caller.tenant_id, "principal": caller.principal_id}
    return await db.read_models(Account, _LINKED, params)


async def linked(db: Database, caller: Caller) -> list[Account]:
    """The caller's accounts, whatever their status (those it has authority over)."""
    caller.require_principal()
    return await _read_linked(db, caller)


async def default(db: Database, caller: Caller) -> Account | None:
    """The caller's default account, if it has one (whatever its status)."""
    return next((a for a in await linked(db, caller) if a.is_default), None)


def match(linked_accounts: list[Account], ref: dict[str, Any], field_name: str) -> Account:
    """The account ``ref`` names among ``linked_accounts``, or AdcpError."""
    return _match_ref(linked_accounts, ref, field_name)


async def list_accounts(
    db: Database, caller: Caller, *, status: str | None = None, sandbox: bool | None = None
) -> list[Account]:
    caller.require_principal()
    accounts = await _read_linked(db, caller)
    return [
        a
        for a in accounts
        if (status is None or a.status == status) and (sandbox is None or a.sandbox == sandbox)
    ]


def _usable(account: Account, field_name: str) -> Account:
    if account.status == "active":
        return account
    if account.status == "pending_approval":
        raise AdcpError(
            "ACCOUNT_SETUP_REQUIRED",
            f"Account '{account.account_id}' is awaiting the publisher's approval.",
            field=field_name,
            suggestion=account.setup_message or "Retry once list_accounts shows it active.",
            details={"account_id": account.account_id, "status": account.status},
        )
    if account.status == "payment_required":
        raise AdcpError(
            "ACCOUNT_PAYMENT_REQUIRED",
            f"Account '{account.account_id}' needs payment set up before buying.",
            field=field_name,
            details={"account_id": account.account_id, "status": account.status},
        )
    raise AdcpError(
        "ACCOUNT_SUSPENDED",
        f"Account '{account.account_id}' is {account.status} and cannot be used.",
        field=field_name,
        recovery="terminal",
        details={"account_id": account.account_id, "status": account.status},
    )


def _match_ref(accounts: list[Account], ref: dict[str, Any], field_name: str) -> Account:
    if ref.get("account_id"):
        for a in accounts:
            if a.account_id == ref["account_id"]:
                return a
        raise AdcpError(
            "ACCOUNT_NOT_FOUND",
            f"Account '{ref['account_id']}' was not found.",
            field=f"{field_name}.account_id",
            suggestion="Call list_accounts to see the accounts you may use.",
        )
    brand = ref.get("brand") or {}
    domain, operator = brand.get("domain"), ref.get("operator")
    if not domain or not operator:
        raise AdcpError(
            "INVALID_REQUEST",
            "An account reference needs account_id, or brand.domain and operator.",
            field=field_name,
        )
    hits = [
        a
        for a in accounts
        if a.brand_domain == domain
        and a.operator == operator
        and (brand.get("brand_id") is None or a.brand_id == brand.get("brand_id"))
        and (ref.get("sandbox") is None or a.sandbox == bool(ref.get("sandbox")))
    ]
    if not hits:
        raise AdcpError(
            "ACCOUNT_NOT_FOUND",
            f"No account for brand '{domain}' operated by '{operator}'.",
            field=field_name,
            suggestion="Declare it with sync_accounts, or call list_accounts.",
        )
    if len(hits) > 1:
        raise AdcpError(
            "ACCOUNT_AMBIGUOUS",
            f"{len(hits)} accounts match brand '{domain}' and operator '{operator}'.",
            field=field_name,
            suggestion="Add sandbox and/or brand.brand_id, or use account_id.",
            details={"account_ids": [a.account_id for a in hits]},
        )
    return hits[0]


async def resolve(
    db: Database, caller: Caller, ref: dict[str, Any] | None, *, field_name: str = "account"
) -> Account:
    """The usable account for a buying call: the one referenced, or the principal's
    default when none is named (seed-003 flat calls)."""
    caller.require_principal()
    accounts = await _read_linked(db, caller)
    if ref is None:
        defaults = [a for a in accounts if a.is_default]
        if not defaults:
            raise AdcpError(
                "ACCOUNT_NOT_FOUND",
                "No account was given and this principal has no default account.",
                field=field_name,
                suggestion="Pass account.account_id from list_accounts.",
            )
        return _usable(defaults[0], field_name)
    return _usable(_match_ref(accounts, ref, field_name), field_name)


@dataclass
class SyncResult:
    action: str  # created | updated | unchanged | failed
    account: Account | None
    errors: list[AdcpError] = field(default_factory=list)


_SETTINGS = ("payment_terms", "billing_entity")


async def sync_accounts(
    db: Database, caller: Caller, entries: Sequence[dict[str, Any]], *, dry_run: bool = False
) -> list[SyncResult]:
    """Upsert buyer-declared accounts by natural key (provisioning) or update settings of
    existing ones (account ref). Repeating a request changes nothing."""
    principal_id = caller.require_principal()
    results: list[SyncResult] = []
    # A dry run works on a session that is never committed: nothing it touches persists.
    scope = db.session() if dry_run else db.transaction()
    async with scope as session:
        tenant = await session.get(Tenant, caller.tenant_id)
        manual = bool(tenant and tenant.features.get("account_approval") == "manual")
        accounts = await _linked(session, caller)
        for i, entry in enumerate(entries):
            where = f"accounts[{i}]"
            try:
                if entry.get("account") is not None:
                    account = _match_ref(accounts, entry["account"], f"{where}.account")
                    changed = _apply_settings(account, entry, where)
                    if changed and not dry_run:
                        account.updated_at = utcnow()
                        session.add(account)
                        await audit.record(
                            session,
                            caller,
                            "account.update",
                            target_type="account",
                            target_id=account.account_id,
                            after=changed,
                        )
                    results.append(SyncResult("updated" if changed else "unchanged", account))
                    continue
                brand = entry.get("brand") or {}
                operator = entry.get("operator")
                billing = entry.get("billing")
                if not brand.get("domain") or not operator or not billing:
                    raise AdcpError(
                        "INVALID_REQUEST",
                        "Provisioning needs brand.domain, operator and billing.",
                        field=where,
                    )
                if billing not in BILLING:
                    raise AdcpError(
                        "VALIDATION_ERROR",
                        f"billing must be one of {', '.join(BILLING)}.",
                        field=f"{where}.billing",
                    )
                sandbox = bool(entry.get("sandbox", False))
                key = natural_key(brand["domain"], brand.get("brand_id"), operator, sandbox)
                existing = next((a for a in accounts if a.natural_key == key), None)
                if existing is not None:
                    if existing.billing != billing:
                        raise AdcpError(
                            "CONFLICT",
                            "billing is fixed when an account is provisioned.",
                            field=f"{where}.billing",
                        )
                    changed = _apply_settings(existing, entry, where)
                    if changed and not dry_run:
                        existing.updated_at = utcnow()
                        session.add(existing)
                    results.append(SyncResult("updated" if changed else "unchanged", existing))
                    continue
                account = Account(
                    account_id=new_id("acc"),
                    tenant_id=caller.tenant_id,
                    name=entry.get("name") or f"{brand['domain']} via {operator}",
                    advertiser=entry.get("advertiser") or brand["domain"],
                    status="pending_approval" if manual and not sandbox else "active",
                    brand_domain=brand["domain"],
                    brand_id=brand.get("brand_id"),
                    operator=operator,
                    billing=billing,
                    sandbox=sandbox,
                    owner_principal_id=principal_id,
                    natural_key=key,
                    setup_message=(
                        "The publisher reviews new accounts; usually within one business day."
                        if manual and not sandbox
                        else None
                    ),
                )
                _apply_settings(account, entry, where)
                accounts.append(account)
                if not dry_run:
                    session.add(account)
                    session.add(
                        AccountPrincipal(
                            account_id=account.account_id,
                            principal_id=principal_id,
                            tenant_id=caller.tenant_id,
                        )
                    )
                    await audit.record(
                        session,
                        caller,
                        "account.create",
                        target_type="account",
                        target_id=account.account_id,
                        after={"natural_key": key, "status": account.status},
                    )
                    if account.status == "pending_approval":
                        await buy_events.account_awaits_approval(session, account, principal_id)
                results.append(SyncResult("created", account))
            except AdcpError as exc:
                results.append(SyncResult("failed", None, [exc]))
    return results


def _apply_settings(account: Account, entry: dict[str, Any], where: str) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    terms = entry.get("payment_terms")
    if terms is not None:
        if terms not in PAYMENT_TERMS:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"payment_terms must be one of {', '.join(PAYMENT_TERMS)}.",
                field=f"{where}.payment_terms",
            )
        if account.payment_terms != terms:
            account.payment_terms = terms
            changed["payment_terms"] = terms
    entity = entry.get("billing_entity")
    if entity is not None and account.billing_entity != entity:
        account.billing_entity = entity
        changed["billing_entity"] = entity
    return changed


async def set_status(
    db: Database, tenant_id: str, account_id: str, status: str, *, actor: str = "admin"
) -> Account:
    """Publisher-side decision on an account (approve, suspend, close, reinstate)."""
    if status not in STATUSES:
        raise AdcpError(
            "VALIDATION_ERROR", f"status must be one of {', '.join(STATUSES)}.", field="status"
        )
    async with db.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None or account.tenant_id != tenant_id:
            raise AdcpError(
                "ACCOUNT_NOT_FOUND", f"Account '{account_id}' was not found.", field="account_id"
            )
        before = account.status
        account.status = status
        account.updated_at = utcnow()
        if status == "active":
            account.setup_message = None
        session.add(account)
        await audit.record(
            session,
            None,
            "account.status",
            actor=actor,
            tenant_id=tenant_id,
            target_type="account",
            target_id=account_id,
            before={"status": before},
            after={"status": status},
        )
    return account


async def grant(
    db: Database, tenant_id: str, account_id: str, principal_id: str, *, actor: str = "admin"
) -> None:
    """Let another principal of the same tenant use an account."""
    async with db.transaction() as session:
        account = await session.get(Account, account_id)
        principal = await session.get(Principal, principal_id)
        if account is None or account.tenant_id != tenant_id:
            raise AdcpError("ACCOUNT_NOT_FOUND", f"Account '{account_id}' was not found.")
        if principal is None or principal.tenant_id != tenant_id:
            raise AdcpError("NOT_FOUND", f"Principal '{principal_id}' was not found.")
        if await session.get(AccountPrincipal, (account_id, principal_id)) is None:
            session.add(
                AccountPrincipal(
                    account_id=account_id, principal_id=principal_id, tenant_id=tenant_id
                )
            )
            await audit.record(
                session,
                None,
                "account.grant",
                actor=actor,
                tenant_id=tenant_id,
                target_type="account",
                target_id=account_id,
                after={"principal": principal_id},
            )


async def list_for_tenant(db: Database, tenant_id: str) -> list[tuple[Account, list[str]]]:
    """Every account of a tenant with the principals that may use it (admin view)."""
    async with db.reading() as session:
        accounts = list(
            (
                await session.exec(
                    select(Account)
                    .where(Account.tenant_id == tenant_id)
                    .order_by(Account.created_at, Account.account_id)
                )
            ).all()
        )
        links = (
            await session.exec(
                select(AccountPrincipal).where(AccountPrincipal.tenant_id == tenant_id)
            )
        ).all()
    users: dict[str, list[str]] = {}
    for link in links:
        users.setdefault(link.account_id, []).append(link.principal_id)
    return [(a, sorted(users.get(a.account_id, []))) for a in accounts]


async def create_account(
    db: Database,
    tenant_id: str,
    *,
    name: str,
    principal_ids: Sequence[str],
    advertiser: str | None = None,
    brand_domain: str | None = None,
    operator: str | None = None,
    billing: str = "operator",
    payment_terms: str | None = None,
    credit_limit: float | None = None,
    currency: str = "USD",
    sandbox: bool = False,
    actor: str = "admin",
    account_id: str | None = None,  # caller-chosen id: sandbox fixtures (seed_account)
) -> Account:
    """A publisher-defined account (seller namespace), usable by the given principals."""
    if billing not in BILLING:
        raise AdcpError(
            "VALIDATION_ERROR", f"billing must be one of {', '.join(BILLING)}.", field="billing"
        )
    if payment_terms is not None and payment_terms not in PAYMENT_TERMS:
        raise AdcpError(
            "VALIDATION_ERROR",
            f"payment_terms must be one of {', '.join(PAYMENT_TERMS)}.",
            field="payment_terms",
        )
    account = Account(
        account_id=account_id or new_id("acc"),
        tenant_id=tenant_id,
        name=name,
        advertiser=advertiser,
        brand_domain=brand_domain,
        operator=operator,
        billing=billing,
        payment_terms=payment_terms,
        credit_limit=credit_limit,
        currency=currency,
        sandbox=sandbox,
    )
    async with db.transaction() as session:
        if await session.get(Tenant, tenant_id) is None:
            raise AdcpError("NOT_FOUND", f"Tenant '{tenant_id}' was not found.", field="tenant_id")
        for i, pid in enumerate(principal_ids):
            principal = await session.get(Principal, pid)
            if principal is None or principal.tenant_id != tenant_id:
                raise AdcpError(
                    "NOT_FOUND", f"Principal '{pid}' was not found.", field=f"principal_ids[{i}]"
                )
        session.add(account)
        await session.flush()
        for pid in principal_ids:
            session.add(
                AccountPrincipal(
                    account_id=account.account_id, principal_id=pid, tenant_id=tenant_id
                )
            )
        await audit.record(
            session,
            None,
            "account.create",
            actor=actor,
            tenant_id=tenant_id,
            target_type="account",
            target_id=account.account_id,
            after={"name": name, "principals": list(principal_ids), "sandbox": sandbox},
        )
    return account


async def update_account(
    db: Database, tenant_id: str, account_id: str, changes: dict[str, Any], *, actor: str = "admin"
) -> Account:
    """Publisher-side edits: name, advertiser, credit limit, payment terms, status."""
    if "status" in changes:
        await set_status(db, tenant_id, account_id, changes["status"], actor=actor)
    editable = {k: v for k, v in changes.items() if k != "status"}
    async with db.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None or account.tenant_id != tenant_id:
            raise AdcpError(
                "ACCOUNT_NOT_FOUND", f"Account '{account_id}' was not found.", field="account_id"
            )
        if editable.get("payment_terms") not in (None, *PAYMENT_TERMS):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"payment_terms must be one of {', '.join(PAYMENT_TERMS)}.",
                field="payment_terms",
            )
        before = {k: getattr(account, k) for k in editable}
        for key, value in editable.items():
            setattr(account, key, value)
        if editable:
            account.updated_at = utcnow()
            session.add(account)
            await audit.record(
                session,
                None,
                "account.update",
                actor=actor,
                tenant_id=tenant_id,
                target_type="account",
                target_id=account_id,
                before=before,
                after=editable,
            )
    return account
