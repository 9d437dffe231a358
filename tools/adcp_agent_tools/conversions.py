"""Conversion tracking tools: sync_event_sources (the buyer's event sources on an
account) and log_event (conversion events, attributed last-click to the packages whose
clicks they name)."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.db.models_delivery import EventSource
from adcp_agent.errors import AdcpError
from adcp_agent.services import conversions
from adcp_agent.state import AppState
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.params import AccountRef, IdempotencyKey, _Open, dump
from adcp_agent_tools.results import adcp_errors_as_results, ok

MUTATES = {"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False}


class EventSourceIn(_Open):
    event_source_id: Any = None
    name: Any = None
    event_types: Any = None
    action_source: Any = None
    allowed_domains: Any = None


def _wire(source: EventSource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_source_id": source.event_source_id,
        "seller_id": f"es_{source.id}",
        "managed_by": "buyer",
        "setup": conversions.SETUP,
    }
    if source.name:
        out["name"] = source.name
    if source.event_types:
        out["event_types"] = source.event_types
    if source.action_source:
        out["action_source"] = source.action_source
    return out


def register(mcp: FastMCP, state: AppState) -> None:
    @mcp.tool(name="sync_event_sources", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def sync_event_sources(
        account: Annotated[
            AccountRef | None,
            Field(description="The account ({account_id}); defaults to your default account."),
        ] = None,
        event_sources: Annotated[
            list[EventSourceIn] | None,
            Field(
                max_length=100,
                description="Sources to create or update by event_source_id: {event_source_id, "
                "name?, event_types? (AdCP event types; all when omitted), action_source?, "
                "allowed_domains?}. Omit to list the account's sources.",
            ),
        ] = None,
        delete_missing: Annotated[
            bool, Field(description="Remove the account's sources this call does not send.")
        ] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Configure where your conversion events come from (website, app, offline…),
        then send them with log_event. Upsert by event_source_id; repeating a sync
        changes nothing."""
        if event_sources is not None and not event_sources:
            raise AdcpError(
                "VALIDATION_ERROR",
                "event_sources needs at least one source (omit it to list them).",
                field="event_sources",
            )
        caller = current_caller()
        _account, results = await conversions.sync_sources(
            state.db,
            caller,
            dump(account),
            None
            if event_sources is None
            else [e.model_dump(mode="json", exclude_none=True) for e in event_sources],
            delete_missing=delete_missing,
        )
        rendered: list[dict[str, Any]] = []
        for r in results:
            item = _wire(r.source) if r.source is not None else {}
            item |= {"event_source_id": r.event_source_id, "action": r.action}
            if r.errors:
                item["errors"] = [e.to_adcp() for e in r.errors]
            rendered.append(item)
        return ok({"event_sources": rendered})

    @mcp.tool(name="log_event", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def log_event(
        event_source_id: Annotated[
            str, Field(min_length=1, description="A source set up with sync_event_sources.")
        ],
        events: Annotated[
            list[Any],
            Field(
                description="Up to 10,000 events: {event_id, event_type, event_time, "
                "user_match?: {click_id?}, custom_data?: {value?, currency?}, "
                "action_source?, event_source_url?}. An event whose click_id names a "
                "click on one of this account's buys (≤ 28 days before) is attributed "
                "to that package."
            ),
        ],
        test_event_code: Annotated[
            str | None, Field(description="Validate the events without recording them.")
        ] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ToolResult:
        """Log conversion events (purchases, leads, sign-ups…). Each is checked on its
        own (failures listed, the rest kept), deduplicated by its id within its type and
        source, and attributed last-click; attributed conversions show in
        get_media_buy_delivery (conversions, conversion_value, roas,
        cost_per_acquisition, by_event_type)."""
        caller = current_caller()
        logged = await conversions.log_events(
            state.db,
            caller,
            event_source_id,
            events,
            now=state.clock.now(),
            test=test_event_code is not None,
        )
        out: dict[str, Any] = {
            "events_received": logged.received,
            "events_processed": logged.processed,
            "match_quality": logged.match_quality,
        }
        if logged.failures:
            out["partial_failures"] = logged.failures
        if logged.warnings:
            out["warnings"] = logged.warnings
        return ok(out)
