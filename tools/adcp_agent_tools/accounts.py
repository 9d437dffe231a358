"""Account tools: which billing accounts a buyer may use, and declaring new ones."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.db.models_accounts import Account
from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts as account_service
from adcp_agent.services import governance, tenants
from adcp_agent.state import AppState
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.params import AccountRef, BrandRef, IdempotencyKey, Pagination, _Open, dump
from adcp_agent_tools.results import adcp_errors_as_results, fingerprint, ok, paginate

MUTATES = {"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False}


class AccountEntry(_Open):
    account: AccountRef | None = None
    brand: BrandRef | None = None
    operator: str | None = None
    billing: Literal["operator", "agent", "advertiser"] | None = None
    sandbox: bool | None = None
    payment_terms: str | None = None
    billing_entity: dict[str, Any] | None = None
    name: str | None = None


class GovernanceEntry(_Open):
    account: dict[str, Any] | None = Field(
        default=None, description="{account_id} or {brand, operator} of one of your accounts."
    )
    governance_agents: list[Any] | None = Field(
        default=None,
        description="Exactly one: {url: 'https://…', authentication: {schemes: ['Bearer'], "
        "credentials: '<32+ chars>'}}.",
    )


def wire_account(a: Account) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account_id": a.account_id,
        "name": a.name,
        "status": a.status,
        "billing": a.billing,
    }
    if a.advertiser:
        out["advertiser"] = a.advertiser
    if a.brand_domain:
        out["brand"] = {"domain": a.brand_domain} | ({"brand_id": a.brand_id} if a.brand_id else {})
    if a.operator:
        out["operator"] = a.operator
    if a.payment_terms:
        out["payment_terms"] = a.payment_terms
    if a.credit_limit is not None:
        out["credit_limit"] = {"amount": a.credit_limit, "currency": a.currency}
    if a.sandbox:
        out["sandbox"] = True
    if agents := governance.wire_agents(a):
        out["governance_agents"] = agents
    if a.setup_message and a.status != "active":
        out["setup"] = {"message": a.setup_message}
    return out


def register(mcp: FastMCP, state: AppState) -> None:
    @mcp.tool(name="list_accounts", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def list_accounts(
        status: Annotated[
            Literal[account_service.STATUSES] | None,  # type: ignore[valid-type]
            Field(description="Only accounts in this status."),
        ] = None,
        sandbox: Annotated[bool | None, Field(description="Only (non-)sandbox accounts.")] = None,
        pagination: Pagination | None = None,
    ) -> ToolResult:
        """List the billing accounts you may buy on. Pass one as `account` (by
        account_id) on create_media_buy and other buying calls; calls without `account`
        bill your default account."""
        caller = current_caller()
        accounts = await account_service.list_accounts(
            state.db, caller, status=status, sandbox=sandbox
        )
        page, page_info = paginate(
            accounts,
            dump(pagination),
            fingerprint("accounts", caller.tenant_id, caller.principal_id, status, sandbox),
        )
        return ok({"accounts": [wire_account(a) for a in page], "pagination": page_info})

    @mcp.tool(name="sync_accounts", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def sync_accounts(
        accounts: Annotated[
            list[AccountEntry],
            Field(
                min_length=1,
                max_length=100,
                description="Each entry provisions by natural key {brand, operator, billing, "
                "sandbox?} or updates settings of {account: {account_id}}.",
            ),
        ],
        dry_run: Annotated[
            bool, Field(description="Report what would change; change nothing.")
        ] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Declare the advertiser accounts you buy for (brand + operator + billing).
        Repeating the same declaration changes nothing. New accounts may need the
        publisher's approval (status pending_approval, with a setup message)."""
        caller = current_caller()
        results = await account_service.sync_accounts(
            state.db,
            caller,
            [e.model_dump(mode="json", exclude_none=True) for e in accounts],
            dry_run=dry_run,
        )
        rendered: list[dict[str, Any]] = []
        for entry, result in zip(accounts, results, strict=True):
            if result.account is not None:
                item = wire_account(result.account)
            else:
                item = {
                    "brand": dump(entry.brand) or {"domain": "unknown.invalid"},
                    "operator": entry.operator or "unknown.invalid",
                }
            item["action"] = result.action
            if result.errors:
                item["status"] = "rejected"
                item["errors"] = [e.to_adcp() for e in result.errors]
            rendered.append(item)
        if all(r.action == "failed" for r in results):
            raise (
                results[0].errors[0]
                if len(results) == 1
                else AdcpError(
                    "INVALID_REQUEST",
                    "No account entry could be processed; see each entry's errors.",
                    details={"entries": [r["errors"] for r in rendered]},
                )
            )
        return ok({"dry_run": dry_run, "accounts": rendered})

    @mcp.tool(name="sync_governance", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def sync_governance(
        accounts: Annotated[
            list[GovernanceEntry],
            Field(min_length=1, max_length=100, description="Per account, its one agent."),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Bind your governance agent to your accounts (replacing the one bound before).
        From then on every buy on such an account needs a plan_id, and this agent asks
        your governance agent (check_governance, over MCP, with the credentials given)
        before it books, changes or activates anything there: a denial is
        GOVERNANCE_DENIED and nothing is committed."""
        caller = current_caller()
        tenant = await tenants.callers_tenant(state.db, caller)
        entries = [e.model_dump(mode="json", exclude_none=True) for e in accounts]
        outcomes = await governance.sync(state, caller, tenant, entries)
        rendered: list[dict[str, Any]] = []
        for entry, outcome in zip(entries, outcomes, strict=True):
            ref = entry.get("account")
            item: dict[str, Any] = {
                "account": ref if isinstance(ref, dict) and ref else {"account_id": "unknown"}
            }
            if outcome.errors:
                item |= {"status": "failed", "errors": [e.to_adcp() for e in outcome.errors]}
            else:
                assert outcome.account is not None
                item |= {
                    "status": "synced",
                    "governance_agents": governance.wire_agents(outcome.account),
                }
            rendered.append(item)
        if all(o.errors for o in outcomes) and len(outcomes) == 1:
            raise outcomes[0].errors[0]
        return ok({"accounts": rendered})
