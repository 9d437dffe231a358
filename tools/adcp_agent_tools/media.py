"""Buying tools: avails, create_media_buy, reading buys back, and the seed aliases."""

from __future__ import annotations

import sys
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.errors import AdcpError
from adcp_agent.services import (
    avails,
    buy_health,
    buy_history,
    creative_rules,
    delivery_reports,
    delivery_wire,
    idempotency,
    interrupted,
    limits,
    media_reads,
    sandbox_arms,
    tenants,
)
from adcp_agent.services import media_buys as buys
from adcp_agent.services.identity import Caller
from adcp_agent.services.push_notifications import PushNotificationConfig
from adcp_agent.services.reporting_webhooks import ReportingWebhookConfig
from adcp_agent.state import AppState
from adcp_agent_tools import media_wire
from adcp_agent_tools.buy_args import (
    REPORTING_WEBHOOK,
    PackageIn,
    inline_groups,
    package_request,
)
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.inline_creatives import sync_inline
from adcp_agent_tools.params import (
    AccountRef,
    BrandRef,
    GovernanceContext,
    IdempotencyKey,
    Money,
    Pagination,
    PlanId,
    dump,
)
from adcp_agent_tools.results import (
    adcp_errors_as_results,
    fingerprint,
    ok,
    page_info,
    page_window,
)
from adcp_agent_tools.test_controller import forced_payload
from adcp_agent_tools.times import flight_from_dates, parse_time

MUTATES = {"readOnlyHint": False, "idempotentHint": False, "openWorldHint": True}


def register(mcp: FastMCP, state: AppState) -> None:
    def render_create(booking: buys.Booking) -> dict[str, Any]:
        if booking.task is not None:
            return media_wire.submitted(booking.task)
        return media_wire.create_completed(
            booking.buy,
            booking.packages,
            state.agent_url,
            booking.notes,
            now=state.clock.now(),
            creative_deadline=booking.creative_deadline,
        )

    @mcp.tool(name="create_media_buy", annotations=MUTATES, output_schema=None)
    @adcp_errors_as_results
    async def create_media_buy(
        packages: Annotated[
            list[PackageIn] | None,
            Field(
                description="AdCP 3.1: one package per product, each with product_id, "
                "budget, pricing_option_id (bid_price for auction options), optional "
                "targeting_overlay and format_ids."
            ),
        ] = None,
        start_time: Annotated[
            str | None, Field(description="ISO 8601 date-time with zone, or 'asap'.")
        ] = None,
        end_time: Annotated[str | None, Field(description="ISO 8601 date-time with zone.")] = None,
        brand: Annotated[BrandRef | None, Field(description="The advertiser: {domain}.")] = None,
        account: Annotated[
            AccountRef | None,
            Field(
                description="Billing account ({account_id} from list_accounts); defaults "
                "to your default account."
            ),
        ] = None,
        po_number: Annotated[
            str | None, Field(description="Seed name of agency_estimate_number.")
        ] = None,
        agency_estimate_number: Annotated[
            str | None,
            Field(
                max_length=100,
                description="Agency estimate / PO number: travels with the order to the "
                "ad server (GAM's PO number) and the publisher's notifications.",
            ),
        ] = None,
        buyer_ref: str | None = None,
        advertiser_industry: Annotated[
            str | None,
            Field(
                description="AdCP advertiser industry (e.g. 'finance.insurance'); the "
                "publisher may not sell to some (POLICY_VIOLATION)."
            ),
        ] = None,
        total_budget: Annotated[
            float | Money | None,
            Field(
                description="3.1: {amount, currency}, equal to the packages' sum (a bare "
                "number is accepted too). Seed form: a number split evenly across "
                "product_ids."
            ),
        ] = None,
        idempotency_key: IdempotencyKey = None,
        product_ids: Annotated[
            list[str] | None, Field(description="Seed-003 flat form: products to buy.")
        ] = None,
        flight_start_date: Annotated[
            str | None, Field(description="Seed form: YYYY-MM-DD.")
        ] = None,
        flight_end_date: Annotated[str | None, Field(description="Seed form: YYYY-MM-DD.")] = None,
        targeting_overlay: Annotated[
            dict[str, Any] | None,
            Field(
                description="Seed form: targeting for every product, e.g. "
                "{geo_country_any_of: ['US'], signals: ['auto_intenders']}."
            ),
        ] = None,
        creative_requirements: Annotated[
            dict[str, Any] | None,
            Field(description="Seed form: {formats: [format ids]} to restrict formats."),
        ] = None,
        paused: Annotated[
            bool,
            Field(
                description="3.1: book the buy paused (it delivers nothing until resumed "
                "with update_media_buy). Not for buys that await approval."
            ),
        ] = False,
        push_notification_config: Annotated[
            PushNotificationConfig | None,
            Field(
                description="Webhook for this buy's later status changes (approval, "
                "rejection, going live, completion): {url, operation_id?, token?, "
                "authentication?: {schemes: ['Bearer'|'HMAC-SHA256'], credentials}}."
            ),
        ] = None,
        reporting_webhook: Annotated[
            ReportingWebhookConfig | None,
            Field(description=REPORTING_WEBHOOK),
        ] = None,
        plan_id: PlanId = None,
        governance_context: GovernanceContext = None,
    ) -> ToolResult:
        """Book a media buy. Non-guaranteed products are booked and activated at once
        (status completed, with media_buy_id and packages). Anything with guaranteed
        inventory goes to the publisher for approval: the answer is status 'submitted'
        with a task_id to poll with get_task_status. Example (3.1):
        {brand: {domain: 'acme.example'}, start_time: '2027-03-01T00:00:00Z',
        end_time: '2027-03-31T23:59:59Z', idempotency_key: '<16+ chars>', packages:
        [{product_id: 'display_run_of_site', pricing_option_id: 'ros_auction',
        bid_price: 4.0, budget: 5000}]}. Seed form: {product_ids, total_budget,
        flight_start_date, flight_end_date, targeting_overlay}."""
        if po_number and agency_estimate_number and po_number != agency_estimate_number:
            raise AdcpError(
                "VALIDATION_ERROR",
                "po_number and agency_estimate_number name the same reference and differ.",
                field="agency_estimate_number",
                suggestion="Send agency_estimate_number alone.",
            )
        estimate = agency_estimate_number or po_number
        caller = current_caller()
        raw = tool_arguments()
        budget_currency = None
        if isinstance(total_budget, Money):
            total_budget, budget_currency = total_budget.amount, total_budget.currency
        if packages and product_ids:
            raise AdcpError(
                "INVALID_REQUEST", "Send packages or product_ids, not both.", field="product_ids"
            )
        if product_ids:
            if total_budget is None or flight_start_date is None or flight_end_date is None:
                missing = [
                    n
                    for n, v in (
                        ("total_budget", total_budget),
                        ("flight_start_date", flight_start_date),
                        ("flight_end_date", flight_end_date),
                    )
                    if v is None
                ]
                raise AdcpError(
                    "INVALID_REQUEST",
                    f"'{missing[0]}' is required with product_ids.",
                    field=missing[0],
                )
            start, end = flight_from_dates(flight_start_date, flight_end_date, state.clock.now())
            formats = (creative_requirements or {}).get("formats")
            share = round(total_budget / len(product_ids), 2)
            req = buys.CreateRequest(
                packages=[
                    buys.PackageRequest(
                        product_id=pid,
                        budget=share,
                        targeting=targeting_overlay,
                        format_ids=formats,
                    )
                    for pid in product_ids
                ],
                start_time=start,
                end_time=end,
                account=dump(account),
                brand=dump(brand),
                po_number=estimate,
                buyer_ref=buyer_ref,
                advertiser_industry=advertiser_industry,
                flat_form=True,
                paused=paused,
                push_notification_config=push_notification_config,
                reporting_webhook=reporting_webhook,
                plan_id=plan_id,
                governance_context=governance_context,
            )
        else:
            if not packages:
                raise AdcpError(
                    "INVALID_REQUEST",
                    "'packages' is required (or the seed's product_ids).",
                    field="packages",
                )
            if brand is None:
                raise AdcpError("BRAND_REQUIRED", "'brand' ({domain}) is required.", field="brand")
            if end_time is None:
                raise AdcpError("INVALID_REQUEST", "'end_time' is required.", field="end_time")
            req = buys.CreateRequest(
                packages=[package_request(p, f"packages[{i}]") for i, p in enumerate(packages)],
                start_time=None
                if start_time in (None, "asap")
                else parse_time(start_time, "start_time"),
                end_time=parse_time(end_time, "end_time"),
                account=dump(account),
                brand=dump(brand),
                po_number=estimate,
                buyer_ref=buyer_ref,
                advertiser_industry=advertiser_industry,
                total_budget=total_budget,
                total_budget_currency=budget_currency,
                paused=paused,
                push_notification_config=push_notification_config,
                reporting_webhook=reporting_webhook,
                plan_id=plan_id,
                governance_context=governance_context,
            )
        groups = inline_groups(packages or [], "packages")

        async def book(completion: idempotency.Completion) -> dict[str, Any]:
            # A request not seen before: its inline creatives join the library first
            # (the booking assigns them).
            await sync_inline(state, caller, dump(account), groups)
            return await sandbox_arms.create_media_buy(
                state,
                caller,
                req,
                completion=completion,
                render=render_create,
                render_forced=forced_payload,
            )

        response = await idempotency.run_once(
            state.db,
            caller,
            "create_media_buy",
            idempotency_key,
            {k: _jsonable(v) for k, v in raw.items() if k != "idempotency_key"},
            book,
            deferred=True,  # media_buys.create claims with its provisional rows
            # A retry after a stopped server first releases the buy its attempt left.
            on_stale=lambda media_buy_id: interrupted.release_retaken(state, media_buy_id),
        )
        return media_wire.as_result(response)

    @mcp.tool(name="get_media_buys", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_media_buys(
        media_buy_ids: Annotated[
            list[str] | None, Field(description="Up to 1000 buy ids.", max_length=1000)
        ] = None,
        status_filter: Annotated[
            str | list[str] | None,
            Field(
                description="pending_start | active | paused | completed | rejected | "
                "canceled; default: everything when ids are given, else all but rejected "
                "and canceled."
            ),
        ] = None,
        account: AccountRef | None = None,
        pagination: Pagination | None = None,
        include_history: Annotated[
            int,
            Field(
                ge=0,
                le=buy_history.MAX_ENTRIES,
                description="Each buy's last N revisions, newest first: revision, "
                "timestamp, actor, action, summary (0: none).",
            ),
        ] = 0,
        include_snapshot: Annotated[
            bool,
            Field(
                description="Each package's lifetime impressions, spend, clicks, pacing "
                "index and delivery status, as of the last complete hour."
            ),
        ] = False,
    ) -> ToolResult:
        """Your media buys with status, budget, flight, revision and packages. Buys still
        awaiting the publisher's approval appear only when asked for by id (track them
        with get_task_status)."""
        caller = current_caller()
        statuses = [status_filter] if isinstance(status_filter, str) else list(status_filter or [])
        valid = {
            "pending_creatives",
            "pending_start",
            "active",
            "paused",
            "completed",
            "rejected",
            "canceled",
        }
        for s in statuses:
            if s not in valid:
                raise AdcpError("VALIDATION_ERROR", f"Unknown status '{s}'.", field="status_filter")
        if not statuses and not media_buy_ids:
            statuses = ["pending_start", "active", "paused", "completed"]
        query = fingerprint("buys", caller.tenant_id, caller.principal_id, media_buy_ids, statuses)
        offset, limit = page_window(dump(pagination), query)
        page, missing, total = await media_reads.page_buys(
            state,
            caller,
            media_buy_ids=media_buy_ids or [],
            statuses=statuses,
            account_ref=dump(account),
            offset=offset,
            limit=limit,
        )
        now = state.clock.now()
        features = (await tenants.callers_tenant(state.db, caller)).features if page else {}
        payload: dict[str, Any] = {
            "media_buys": [
                media_wire.media_buy(
                    v.buy,
                    v.packages,
                    state.agent_url,
                    now,
                    creative_deadline=creative_rules.creative_deadline(features, v.buy.start_time),
                )
                for v in page
            ],
            "pagination": page_info(offset, limit, total, query),
        }
        impaired = await buy_health.impairments(state.db, [p for v in page for p in v.packages])
        for out in payload["media_buys"]:
            out["impairments"] = impaired.get(out["media_buy_id"], [])
            out["health"] = "impaired" if out["impairments"] else "ok"
        warnings: list[dict[str, Any]] = []
        if include_history and page:
            history = await buy_history.recent(
                state.db,
                caller.tenant_id,
                [(v.buy.media_buy_id, v.buy.currency) for v in page],
                include_history,
            )
            for out in payload["media_buys"]:
                out["history"] = history[out["media_buy_id"]]
        if include_snapshot and page:
            warnings += await _add_snapshots(payload["media_buys"], caller)
        if missing:
            warnings += [
                AdcpError(
                    "MEDIA_BUY_NOT_FOUND",
                    f"Media buy '{m}' was not found.",
                    field=f"media_buy_ids[{(media_buy_ids or []).index(m)}]",
                ).to_adcp()
                for m in missing
            ]
        if warnings:
            payload["errors"] = warnings
        return ok(payload)

    async def _add_snapshots(buys: list[dict[str, Any]], caller: Caller) -> list[dict[str, Any]]:
        """Each package's delivery snapshot, from the same figures as
        get_media_buy_delivery; a buy whose ad server could not be reached has none."""
        report = await delivery_reports.report(
            state,
            caller,
            delivery_reports.ReportQuery(media_buy_ids=[b["media_buy_id"] for b in buys]),
        )
        stale = {w.details.get("media_buy_id") for w in report.warnings}
        packages = {pr.package.package_id: (pr, b) for b in report.buys for pr in b.packages}
        for out in buys:
            for package in out["packages"]:
                if out["media_buy_id"] in stale:
                    package["snapshot_unavailable_reason"] = "SNAPSHOT_TEMPORARILY_UNAVAILABLE"
                elif package["package_id"] in packages:
                    pr, b = packages[package["package_id"]]
                    package["snapshot"] = delivery_wire.snapshot(pr, b, report.now)
        return [w.to_adcp() for w in report.warnings]

    @mcp.tool(name="get_avails", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def get_avails(
        product_ids: Annotated[list[str], Field(min_length=1)],
        flight_start_date: Annotated[str, Field(description="YYYY-MM-DD")],
        flight_end_date: Annotated[str, Field(description="YYYY-MM-DD")],
        total_budget: Annotated[float | None, Field(gt=0)] = None,
        targeting_overlay: dict[str, Any] | None = None,
    ) -> ToolResult:
        """Check availability before buying (seed-003): per product, the impressions still
        available in the flight after existing bookings and your targeting, the CPM,
        and the budget that can be delivered. With total_budget (split evenly across
        products) you get a warning where it exceeds capacity."""
        caller = current_caller()
        start, end = flight_from_dates(flight_start_date, flight_end_date, state.clock.now())
        begins = start or state.clock.now()
        tenant = await tenants.callers_tenant(state.db, caller)
        results = await avails.check(
            state, caller, tenant, product_ids, begins, end, targeting_overlay
        )
        if total_budget is not None:
            limits.amount(total_budget, "total_budget")
        share = total_budget / len(product_ids) if total_budget else None
        rows: list[dict[str, Any]] = []
        warnings: list[str] = []
        for a in results:
            wanted = int(share / a.price * 1000) if share else a.available_impressions
            impressions = min(wanted, a.available_impressions)
            row: dict[str, Any] = {
                "product_id": a.product.product_id,
                "delivery_type": a.product.delivery_type,
                "cpm": a.price,
                "pricing": "fixed" if a.fixed else "auction_floor",
                "available_impressions": a.available_impressions,
                "capacity_impressions": a.capacity_impressions,
                "reserved_impressions": a.reserved_impressions,
                "deliverable_budget": a.deliverable_budget,
                "min_spend": a.min_spend,
                "impressions": impressions,
                "total_cost": round(impressions * a.price / 1000, 2),
            }
            if share and wanted > a.available_impressions:
                row["warning"] = (
                    f"Requested {share:,.2f} exceeds capacity: at most "
                    f"{a.deliverable_budget:,.2f} can deliver in this flight."
                )
                warnings.append(f"{a.product.product_id}: {row['warning']}")
            if share and share < a.min_spend:
                row["warning"] = (
                    f"Budget share {share:,.2f} is below the {a.min_spend:,.2f} minimum."
                )
                warnings.append(f"{a.product.product_id}: {row['warning']}")
            rows.append(row)
        return ok(
            {
                "packages": rows,
                "total_budget": round(sum(r["total_cost"] for r in rows), 2),
                "total_impressions": sum(r["impressions"] for r in rows),
                "warnings": warnings,
            }
        )

    @mcp.tool(name="check_media_buy_status", annotations=READ_ONLY, output_schema=None)
    @adcp_errors_as_results
    async def check_media_buy_status(media_buy_id: str) -> ToolResult:
        """Current status and performance of one media buy (seed-003): status, flight
        progress, budget spent, impressions delivered, CTR, viewability, completion rate
        and pacing (get_media_buy_delivery has the full breakdown)."""
        caller = current_caller()
        report = await delivery_reports.report(
            state, caller, delivery_reports.ReportQuery(media_buy_ids=[media_buy_id])
        )
        if not report.buys:
            raise AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{media_buy_id}' was not found.",
                field="media_buy_id",
            )
        [b] = report.buys
        totals = delivery_reports.Totals()
        viewable = 0.0
        for pr in b.packages:
            totals.add(pr.lifetime)
            viewable += pr.lifetime.impressions * float(pr.inventory.get("viewability", 1.0))
        imps = totals.impressions
        status = "pending_approval" if b.buy.state == "pending_approval" else b.status
        result = ok(
            {
                "media_buy_id": b.buy.media_buy_id,
                "media_buy_status": status,
                "flight_progress": round(b.flight_progress, 4),
                "budget_spent": round(totals.spend, 2),
                "total_budget": b.buy.total_budget,
                "impressions_delivered": imps,
                "performance": {
                    "ctr": round(totals.clicks / imps, 5) if imps else 0.0,
                    "viewability": round(viewable / imps, 4) if imps else 0.0,
                    "completion_rate": round(totals.completions / imps, 5) if imps else 0.0,
                },
                "pacing": {
                    "pacing_index": b.pacing_index,
                    "alerts": [a.message for a in b.alerts if a.day == report.now.date()],
                },
            }
        )
        assert isinstance(result.structured_content, dict)
        result.structured_content["status"] = status  # the seed's shape: status of the buy
        return result


def tool_arguments() -> dict[str, Any]:
    """The calling tool's own arguments (what the idempotency hash covers). Not
    ``locals()``: that also holds the closure's free variables (the app state, helper
    functions) whose reprs differ between processes, so a key retried on another
    server process, or after a restart, would look like a different request."""
    frame = sys._getframe(1)
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return {name: frame.f_locals[name] for name in names}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
