"""sync_audiences: the buyer's first-party (CRM) audiences on an account, matched
against the publisher's users and targeted with targeting_overlay.audience_include /
audience_exclude."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.db.models_accounts import Account
from adcp_agent.errors import AdcpError
from adcp_agent.services import audiences as audience_service
from adcp_agent.services import idempotency
from adcp_agent.services.audiences import AudienceResult
from adcp_agent.state import AppState
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.params import AccountRef, IdempotencyKey, dump
from adcp_agent_tools.results import adcp_errors_as_results, ok

MUTATES = {"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False}
_SHOWN = ("name", "description", "audience_type", "tags", "consent_basis")


def capabilities(features: dict[str, Any] | None) -> dict[str, Any]:
    """get_adcp_capabilities' media_buy.audience_targeting."""
    return {
        "supported_identifier_types": list(audience_service.HASHED_TYPES),
        "supported_uid_types": list(audience_service.UID_TYPES),
        "minimum_audience_size": audience_service.minimum_size(features),
        "matching_latency_hours": {"min": 0, "max": 0},  # matched as they are synced
    }


def _item(result: AudienceResult, minimum: int) -> dict[str, Any]:
    out: dict[str, Any] = {"audience_id": result.audience_id, "action": result.action}
    audience = result.audience
    if result.errors:
        out["errors"] = [e.to_adcp() for e in result.errors]
    if audience is None:
        return out
    out["seller_id"] = audience.seller_id
    for name in _SHOWN:
        if getattr(audience, name) is not None:
            out[name] = getattr(audience, name)
    if result.action == "deleted":
        return out
    status = audience_service.status_of(audience, minimum)
    total, matched = audience.member_count, audience.matched_count
    out |= {
        "status": status,
        "uploaded_count": result.uploaded,
        "total_uploaded_count": total,
        "matched_count": matched,
        "effective_match_rate": round(matched / total, 4) if total else 0.0,
        "last_synced_at": audience.last_synced_at.isoformat().replace("+00:00", "Z"),
    }
    breakdown = [
        {
            "id_type": id_type if id_type in audience_service.MATCH_ID_TYPES else "other",
            **({} if id_type in audience_service.MATCH_ID_TYPES else {"uid_type": id_type}),
            "submitted": submitted,
            "matched": hits,
            "match_rate": round(hits / submitted, 4) if submitted else 0.0,
        }
        for id_type, (submitted, hits) in sorted(audience.match_breakdown.items())
    ]
    if breakdown:
        out["match_breakdown"] = breakdown
    if status == "too_small":
        out["minimum_size"] = minimum
    return out


def _render(account: Account, results: list[AudienceResult], minimum: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"audiences": [_item(r, minimum) for r in results]}
    if account.sandbox:
        payload["sandbox"] = True
    return payload


def register(mcp: FastMCP, state: AppState) -> None:
    @mcp.tool(name="sync_audiences", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def sync_audiences(
        account: Annotated[
            AccountRef | None,
            Field(description="The account ({account_id}); defaults to your default account."),
        ] = None,
        audiences: Annotated[
            list[Any] | None,
            Field(
                description="Audiences to create or update by audience_id: {audience_id, "
                "name?, description?, audience_type? (crm | suppression | lookalike_seed), "
                "tags?, consent_basis?, add?: [member], remove?: [member], delete?: true}. "
                "A member is {external_id, hashed_email?, hashed_phone?, uids?: [{type, "
                "value}]} with at least one identifier (SHA-256 hex of the lowercased, "
                "trimmed e-mail or of the E.164 phone). Up to 100,000 members a call. Omit "
                "to list the account's audience_service.",
            ),
        ] = None,
        delete_missing: Annotated[
            bool,
            Field(description="Delete the account's audiences this call does not send."),
        ] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Upload first-party CRM audiences (hashed e-mails, phones, universal ids) and
        target them with targeting_overlay.audience_include / audience_exclude. Members
        are deltas (add / remove; remove wins); each audience is matched against the
        publisher's users at once: status 'ready' when its matched members reach the
        publisher's minimum (get_adcp_capabilities media_buy.audience_targeting), else
        'too_small' with minimum_size. Suppression lists are ready at any size."""
        if audiences is not None and not audiences:
            raise AdcpError(
                "VALIDATION_ERROR",
                "audiences needs at least one audience (omit it to list them).",
                field="audiences",
            )
        if delete_missing and audiences is None:
            raise AdcpError(
                "VALIDATION_ERROR",
                "delete_missing needs the audiences to keep; without them it would delete "
                "every audience on the account.",
                field="delete_missing",
            )
        caller = current_caller()
        account_ref = dump(account)
        request = {
            "account": account_ref,
            "audiences": audiences,
            "delete_missing": delete_missing,
        }
        response = await idempotency.run_once(
            state.db,
            caller,
            "sync_audiences",
            idempotency_key,
            request,
            lambda completion: audience_service.sync(
                state.db,
                caller,
                account_ref,
                audiences,
                delete_missing=delete_missing,
                now=state.clock.now(),
                render=_render,
                completion=completion,
            ),
        )
        return ok(response)
