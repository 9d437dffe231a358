"""Signals tools: the publisher's first-party audiences and contexts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.errors import AdcpError
from adcp_agent.services import accounts, catalog, governance, sandbox_arms
from adcp_agent.services import signals as signal_service
from adcp_agent.state import AppState
from adcp_agent_tools import wire
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY, resolve_account
from adcp_agent_tools.params import (
    AccountRef,
    Destination,
    GovernanceContext,
    Pagination,
    _Open,
    dump,
)
from adcp_agent_tools.results import (
    adcp_errors_as_results,
    fingerprint,
    not_applied,
    ok,
    paginate,
)
from adcp_agent_tools.test_controller import forced_result


class SignalFilters(_Open):
    max_cpm: float | None = Field(default=None, ge=0)
    min_coverage_percentage: float | None = Field(default=None, ge=0, le=100)
    # Every signal here is priced per mille: a percent-of-media cap excludes none.
    max_percent: float | None = Field(default=None, ge=0, le=100)


class SignalId(_Open):
    """AdCP's SignalId ({source, data_provider_domain | agent_url, id}; deprecated)."""

    id: str = Field(min_length=1, max_length=200)


class SignalRef(_Open):
    """AdCP 3.1's SignalRef ({scope, ..., signal_id})."""

    signal_id: str = Field(min_length=1, max_length=200)


# get_signals arguments this agent has no data for: answered, and reported as not applied.
_UNAPPLIED = ("countries", "destinations", "filters.catalog_types", "filters.data_providers")


def register(mcp: FastMCP, state: AppState) -> None:
    agent_url = state.agent_url

    async def publisher_domain() -> str:
        caller = current_caller()
        props = await catalog.list_properties(state.db, caller)
        return props[0].publisher_domain if props else caller.tenant_id

    @mcp.tool(name="get_signals", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_signals(
        signal_spec: Annotated[
            str | None, Field(description="What audience or context you need, in words.")
        ] = None,
        query: Annotated[str | None, Field(description="Seed-003 alias of signal_spec.")] = None,
        type: Annotated[
            Literal["audience", "contextual", "geo"] | None,
            Field(description="Only signals of this kind."),
        ] = None,
        signal_ids: Annotated[
            list[str | SignalId] | None,
            Field(max_length=100, description="Fetch these signals by id (or SignalId)."),
        ] = None,
        signal_refs: Annotated[
            list[SignalRef] | None,
            Field(max_length=100, description="Fetch these signals: [{scope, signal_id}]."),
        ] = None,
        discovery_mode: Literal["brief", "wholesale"] | None = None,
        filters: SignalFilters | None = None,
        account: AccountRef | None = None,
        pagination: Pagination | None = None,
        max_results: Annotated[
            int | None, Field(ge=1, description="Deprecated page size (pagination wins).")
        ] = None,
        countries: list[str] | None = None,
        destinations: list[dict[str, Any]] | None = None,
        fields: Annotated[
            list[str] | None,
            Field(min_length=1, description="Every field this agent has is always included."),
        ] = None,
    ) -> ToolResult:
        """Discover the publisher's first-party targeting signals (audiences such as
        'Sports Enthusiasts', contextual segments, geo). Describe what you need in
        `signal_spec` (e.g. "people shopping for a new car"); results are ranked by
        relevance. Use a signal's `signal_agent_segment_id` with activate_signal and in
        a media buy's targeting."""
        caller = current_caller()
        await resolve_account(state, caller, account)
        spec = signal_spec or query
        f = filters or SignalFilters()
        wanted = [i if isinstance(i, str) else i.id for i in signal_ids or []]
        wanted += [r.signal_id for r in signal_refs or []]
        given = {
            "countries": countries,
            "destinations": destinations,
            **{f"filters.{name}": value for name, value in (f.model_extra or {}).items()},
        }
        page_size = dump(pagination) or {}
        if max_results is not None and "max_results" not in page_size:
            page_size = {**page_size, "max_results": min(max_results, 100)}
        forced = await sandbox_arms.take(state, caller, "get_signals", dump(account))
        if forced is not None:  # a sandbox's force_get_signals_arm
            return forced_result(forced)
        matches = await signal_service.search_signals(
            state.db,
            caller,
            query=spec,
            signal_types=[type] if type else [],
            signal_ids=wanted,
            max_cpm=f.max_cpm,
        )
        if f.min_coverage_percentage is not None:
            matches = [
                m for m in matches if m.signal.coverage_percentage >= f.min_coverage_percentage
            ]
        page, page_info = paginate(
            matches,
            page_size,
            fingerprint("signals", caller.tenant_id, spec, type, wanted, dump(f)),
        )
        domain = await publisher_domain()
        payload: dict[str, Any] = {
            "cache_scope": "account" if caller.authenticated else "public",
            "signals": [
                wire.signal(m.signal, agent_url=agent_url, publisher_domain=domain) for m in page
            ],
            "pagination": page_info,
        }
        unapplied = not_applied((name, given.get(name)) for name in _UNAPPLIED)
        if unapplied:
            payload["errors"] = unapplied
        return ok(payload)

    @mcp.tool(
        name="activate_signal",
        annotations={"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False},
        output_schema=None,
    )
    @adcp_errors_as_results
    async def activate_signal(
        signal_agent_segment_id: Annotated[
            str, Field(min_length=1, description="The signal id from get_signals.")
        ],
        destinations: Annotated[
            list[Destination] | None,
            Field(
                description="Where to activate. Owned signals activate on this "
                "publisher's own inventory: {type: 'agent', agent_url: <this agent>}."
            ),
        ] = None,
        action: Literal["activate", "deactivate"] = "activate",
        account: AccountRef | None = None,
        pricing_option_id: Annotated[
            str | None, Field(description="The signal's pricing option from get_signals.")
        ] = None,
        governance_context: GovernanceContext = None,
    ) -> ToolResult:
        """Activate one of the publisher's signals for your media buys. Idempotent:
        activating again returns the same activation. Then target it in create_media_buy
        (targeting_overlay.signals)."""
        caller = current_caller()
        await resolve_account(state, caller, account)
        billed = await (
            accounts.resolve(state.db, caller, dump(account))
            if account is not None
            else accounts.default(state.db, caller)
        )
        if billed is not None and governance.governed(billed) and not governance_context:
            raise AdcpError(
                "INVALID_REQUEST",
                f"Account '{billed.account_id}' has a governance agent: activations on it "
                "need the governance_context it issued for this activation.",
                field="governance_context",
                suggestion="Ask your governance agent (check_governance) and send the "
                "governance_context it returns.",
            )
        if action != "activate":
            raise AdcpError(
                "UNSUPPORTED_FEATURE",
                "Deactivation is not offered; an unused activation costs nothing.",
                field="action",
            )
        dests = destinations or [Destination(type="agent", agent_url=agent_url)]
        for i, dest in enumerate(dests):
            if dest.type != "agent":
                raise AdcpError(
                    "UNSUPPORTED_FEATURE",
                    "Owned signals activate only on this publisher's inventory, not on "
                    f"external platforms ('{dest.platform}').",
                    field=f"destinations[{i}].type",
                    suggestion=f"Use {{'type': 'agent', 'agent_url': '{agent_url}'}}.",
                )
        activations = await signal_service.activate(
            state.db,
            caller,
            signal_agent_segment_id,
            [{"type": "agent", "agent_url": d.agent_url or agent_url} for d in dests],
            pricing_option_id,
            governance_context,
        )
        deployments: list[dict[str, Any]] = [
            {
                "type": "agent",
                "agent_url": a.destination["agent_url"],
                "is_live": True,
                "activation_key": a.activation_key,
            }
            for a in activations
        ]
        return ok({"deployments": deployments})
