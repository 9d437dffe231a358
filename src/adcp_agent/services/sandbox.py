"""Sandbox: who may drive ``comply_test_controller`` and what it may touch.

A caller is a sandbox caller when its tenant is flagged for testing
(``features.sandbox``) or when it may use at least one sandbox account (declared with
``sync_accounts``). Only sandbox callers see the controller, and it only ever reaches
the caller's own entities that live in a sandbox: buys, creatives and tasks of a sandbox
account (any account of a sandbox tenant). Production data is out of its reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_accounts import Account, AccountPrincipal
from adcp_agent.db.models_creatives import Creative
from adcp_agent.db.models_media import MediaBuy, Task
from adcp_agent.services.identity import Caller
from adcp_agent.state import AppState

ControllerCode = Literal[
    "INVALID_TRANSITION",
    "INVALID_STATE",
    "NOT_FOUND",
    "UNKNOWN_SCENARIO",
    "INVALID_PARAMS",
    "FORBIDDEN",
    "INTERNAL_ERROR",
]


class ControllerError(Exception):
    """A scenario that could not run, rendered as the controller's error arm
    (``{success: false, error, error_detail, current_state}``), never as a tool error."""

    def __init__(self, code: ControllerCode, detail: str, current_state: str | None = None) -> None:
        super().__init__(detail)
        self.code: ControllerCode = code
        self.detail = detail
        self.current_state = current_state


def tenant_is_sandbox(tenant: Tenant) -> bool:
    return bool(tenant.features.get("sandbox"))


async def _linked(db: Database, caller: Caller) -> list[Account]:
    async with db.reading() as session:
        rows = await session.exec(
            select(Account)
            .join(AccountPrincipal, AccountPrincipal.account_id == Account.account_id)
            .where(
                Account.tenant_id == caller.tenant_id,
                AccountPrincipal.principal_id == caller.principal_id,
            )
            .order_by(Account.created_at, Account.account_id)
        )
        return list(rows.all())


def is_sandbox_caller(caller: Caller) -> bool:
    """Whether ``caller`` may see and call the test controller (resolved with its
    token: see ``identity.authenticate``)."""
    return caller.principal_id is not None and caller.sandbox


@dataclass
class Scope:
    """One controller call: the caller, its tenant and the ``account`` it asserted."""

    state: AppState
    caller: Caller
    tenant: Tenant
    ref: dict[str, Any]

    @property
    def principal_id(self) -> str:
        assert self.caller.principal_id is not None
        return self.caller.principal_id

    @property
    def actor(self) -> str:
        return f"{self.caller.actor} via comply_test_controller"[:100]

    def in_sandbox(self, account_sandbox: bool) -> bool:
        return account_sandbox or tenant_is_sandbox(self.tenant)

    async def account(self) -> Account:
        """The sandbox account this call targets: ``account.account_id``, else
        ``brand``+``operator``, else the caller's only sandbox account."""
        linked = await _linked(self.state.db, self.caller)
        if self.ref.get("account_id"):
            return self._pick(linked, str(self.ref["account_id"]))
        brand = self.ref.get("brand") or {}
        if brand.get("domain") and self.ref.get("operator"):
            hits = [
                a
                for a in linked
                if a.brand_domain == brand["domain"]
                and a.operator == self.ref["operator"]
                and self.in_sandbox(a.sandbox)
            ]
        else:
            hits = [a for a in linked if a.sandbox]
            if not hits and tenant_is_sandbox(self.tenant):
                hits = [a for a in linked if a.is_default]
        if not hits:
            raise ControllerError(
                "NOT_FOUND",
                "No sandbox account matches; declare one with sync_accounts (sandbox: true) "
                "or seed_account.",
            )
        if len(hits) > 1:
            raise ControllerError(
                "INVALID_PARAMS",
                "Several sandbox accounts match ("
                + ", ".join(a.account_id for a in hits)
                + "); name one with account.account_id.",
            )
        return hits[0]

    async def linked_account(self, account_id: str) -> Account:
        return self._pick(await _linked(self.state.db, self.caller), account_id)

    def _pick(self, linked: list[Account], account_id: str) -> Account:
        account = next((a for a in linked if a.account_id == account_id), None)
        if account is None:
            raise ControllerError("NOT_FOUND", f"Account '{account_id}' was not found.")
        if not self.in_sandbox(account.sandbox):
            raise ControllerError(
                "FORBIDDEN",
                f"Account '{account_id}' is a production account; the test controller only "
                "acts on sandbox accounts.",
            )
        return account

    async def buy(self, media_buy_id: str) -> MediaBuy:
        async with self.state.db.reading() as session:
            buy = await session.get(MediaBuy, media_buy_id)
        if (
            buy is None
            or buy.tenant_id != self.caller.tenant_id
            or buy.principal_id != self.caller.principal_id
            or buy.state == "provisioning"
            or (self.ref.get("account_id") and buy.account_id != self.ref["account_id"])
        ):
            raise ControllerError("NOT_FOUND", f"Media buy '{media_buy_id}' was not found.")
        if not self.in_sandbox(buy.sandbox):
            raise ControllerError(
                "FORBIDDEN",
                f"Media buy '{media_buy_id}' is a production buy; the test controller only "
                "acts on sandbox buys.",
            )
        return buy

    async def creative(self, creative_id: str) -> Creative:
        async with self.state.db.reading() as session:
            found = (
                await session.exec(
                    select(Creative, Account)
                    .join(Account, Account.account_id == Creative.account_id)
                    .where(
                        Creative.tenant_id == self.caller.tenant_id,
                        Creative.principal_id == self.caller.principal_id,
                        Creative.creative_id == creative_id,
                    )
                )
            ).first()
        if found is None:
            raise ControllerError("NOT_FOUND", f"Creative '{creative_id}' was not found.")
        creative, account = found
        if not self.in_sandbox(account.sandbox):
            raise ControllerError(
                "FORBIDDEN",
                f"Creative '{creative_id}' belongs to a production account; the test "
                "controller only acts on sandbox creatives.",
            )
        return creative

    async def task(self, task_id: str) -> Task:
        async with self.state.db.reading() as session:
            task = await session.get(Task, task_id)
        if (
            task is None
            or task.tenant_id != self.caller.tenant_id
            or task.principal_id != self.caller.principal_id
        ):
            raise ControllerError("NOT_FOUND", f"Task '{task_id}' was not found.")
        if task.media_buy_id is not None:
            await self.buy(task.media_buy_id)  # its buy must be a sandbox buy
        return task


async def open_scope(state: AppState, caller: Caller, ref: dict[str, Any]) -> Scope:
    async with state.db.reading() as session:
        tenant = await session.get(Tenant, caller.tenant_id)
    if tenant is None or not is_sandbox_caller(caller):
        raise ControllerError("FORBIDDEN", "The test controller is for sandbox callers only.")
    return Scope(state, caller, tenant, ref)
