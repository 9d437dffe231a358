"""Delivery tools: get_media_buy_delivery (AdCP 3.1), its seed-003 alias
get_media_buy_report, and provide_performance_feedback (registered from ``feedback``)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Annotated, Any, ParamSpec

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from pydantic import Field

from adcp_agent.clock import floor_hour
from adcp_agent.errors import AdcpError
from adcp_agent.services import delivery_reports, delivery_wire
from adcp_agent.services.delivery_reports import DeliveryReport, Totals
from adcp_agent.state import AppState
from adcp_agent_tools import feedback
from adcp_agent_tools.caller import current_caller
from adcp_agent_tools.discovery import READ_ONLY
from adcp_agent_tools.params import AccountRef, check_names, dump
from adcp_agent_tools.results import error_result, ok
from adcp_agent_tools.times import parse_day

P = ParamSpec("P")
STATUSES = ("pending_creatives", "pending_start", "active", "paused", "completed")
ALL_STATUSES = (*STATUSES, "rejected", "canceled")
REPORT_DIMENSIONS = ("date", "hour", "package", "product")
REPORT_METRICS = (
    "impressions",
    "clicks",
    "ctr",
    "spend",
    "cpm",
    "completions",
    "completion_rate",
    "viewable_impressions",
)


def _errors_with_shape(
    state: AppState,
) -> Callable[[Callable[P, Awaitable[ToolResult]]], Callable[P, Awaitable[ToolResult]]]:
    """get_media_buy_delivery keeps reporting_period, currency and media_buy_deliveries
    required even on failure (its schema has no error arm): add them to the error."""

    def decorate(fn: Callable[P, Awaitable[ToolResult]]) -> Callable[P, Awaitable[ToolResult]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> ToolResult:
            try:
                return await fn(*args, **kwargs)
            except AdcpError as exc:
                result = error_result([exc])
                now = floor_hour(state.clock.now())
                assert isinstance(result.structured_content, dict)
                result.structured_content.update(
                    reporting_period=delivery_wire.period(now, now),
                    currency="USD",
                    media_buy_deliveries=[],
                )
                return result

        return wrapper

    return decorate


def _statuses(value: str | list[str] | None, ids: list[str] | None) -> list[str]:
    statuses = [value] if isinstance(value, str) else list(value or [])
    for s in statuses:
        if s not in ALL_STATUSES:
            raise AdcpError(
                "VALIDATION_ERROR",
                f"Unknown status '{s}'.",
                field="status_filter",
                suggestion=f"Use: {', '.join(ALL_STATUSES)}.",
            )
    return statuses or ([] if ids else list(STATUSES))


def _day(value: str | None, field: str) -> date | None:
    return parse_day(value, field) if value else None


def _report_rows(
    report: DeliveryReport, dimensions: list[str], wanted: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Seed-003 rows: one per combination of the requested dimensions."""
    groups: dict[tuple[str, ...], tuple[Totals, list[int]]] = {}
    [b] = report.buys
    viewable_total = 0
    for pr in b.packages:
        rate = pr.inventory.get("viewability")
        if "hour" in dimensions:
            slices = [(h.isoformat().replace("+00:00", "Z"), t) for h, t in pr.hours.items()]
        elif "date" in dimensions:
            slices = [(d.isoformat(), t) for d, t in pr.days.items()]
        else:
            slices = [("", pr.period)]
        by_dimension = {
            "package": pr.package.package_id,
            "product": pr.package.product_id,
        }
        for when, t in slices:
            key = tuple(when if d in ("date", "hour") else by_dimension[d] for d in dimensions)
            total, viewable = groups.setdefault(key, (Totals(), [0]))
            total.add(t)
            viewable[0] += round(t.impressions * float(rate or 0.0))
        viewable_total += round(pr.period.impressions * float(rate or 0.0))
    rows = [
        {**dict(zip(dimensions, key, strict=True)), **_pick(total, viewable[0], wanted)}
        for key, (total, viewable) in sorted(groups.items())
    ]
    return rows, _pick(b.period, viewable_total, wanted)


def _pick(t: Totals, viewable: int, wanted: list[str]) -> dict[str, Any]:
    """viewable_impressions counts measured inventory only (audio has none)."""
    values: dict[str, Any] = {
        "impressions": t.impressions,
        "clicks": t.clicks,
        "ctr": round(t.clicks / t.impressions, 6) if t.impressions else 0.0,
        "spend": round(t.spend, 2),
        "cpm": round(t.spend / t.impressions * 1000, 4) if t.impressions else 0.0,
        "completions": t.completions,
        "completion_rate": round(t.completions / t.impressions, 4) if t.impressions else 0.0,
        "viewable_impressions": viewable,
    }
    return {m: values[m] for m in wanted}


def register(mcp: FastMCP, state: AppState) -> None:
    shaped = _errors_with_shape(state)

    @mcp.tool(name="get_media_buy_delivery", annotations=READ_ONLY, output_schema=None)
    @shaped
    async def get_media_buy_delivery(
        media_buy_ids: Annotated[
            list[str] | None,
            Field(
                description="Buys to report (up to 1000); default: your 100 newest (a "
                "RESULTS_TRUNCATED warning says when more match).",
                max_length=1000,
            ),
        ] = None,
        status_filter: Annotated[
            str | list[str] | None,
            Field(description="Without ids: pending_start, active, paused, completed."),
        ] = None,
        start_date: Annotated[
            str | None, Field(description="YYYY-MM-DD (UTC); omit both dates for lifetime.")
        ] = None,
        end_date: Annotated[str | None, Field(description="YYYY-MM-DD (UTC), inclusive.")] = None,
        include_package_daily_breakdown: bool = False,
        time_granularity: Annotated[
            str | None,
            Field(description="hourly | daily | monthly slices (with include_window_breakdown)."),
        ] = None,
        include_window_breakdown: bool = False,
        account: AccountRef | None = None,
        reporting_dimensions: dict[str, Any] | None = None,
        attribution_window: dict[str, Any] | None = None,
    ) -> ToolResult:
        """Delivery of your media buys: impressions, spend, clicks, video completions and
        viewability, totals per buy and per package, a daily breakdown, and pacing
        (pacing_index: 1.0 on track, below 1 behind; delivery_status; pacing alerts with
        a recommendation in ext.pacing). Figures are hourly, up to the last complete hour.
        Example: {media_buy_ids: ['mb_…'], start_date: '2027-03-01', end_date:
        '2027-03-07', include_package_daily_breakdown: true}."""
        caller = current_caller()
        if time_granularity is not None and time_granularity not in delivery_wire.GRANULARITIES:
            raise AdcpError(
                "UNSUPPORTED_GRANULARITY",
                f"time_granularity '{time_granularity}' is not offered.",
                field="time_granularity",
                suggestion="Use hourly, daily or monthly.",
            )
        report = await delivery_reports.report(
            state,
            caller,
            delivery_reports.ReportQuery(
                media_buy_ids=media_buy_ids or [],
                statuses=_statuses(status_filter, media_buy_ids),
                account=dump(account),
                start_date=_day(start_date, "start_date"),
                end_date=_day(end_date, "end_date"),
                hourly=include_window_breakdown and time_granularity == "hourly",
            ),
        )
        ids = media_buy_ids or []
        not_found = [
            AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{m}' was not found.",
                field=f"media_buy_ids[{ids.index(m)}]",
                suggestion="Call get_media_buys to list your media buys.",
            )
            for m in report.missing
        ]
        if ids and not report.buys:
            raise not_found[0]
        errors = [*not_found, *report.warnings]
        for name, value in (
            ("reporting_dimensions", reporting_dimensions),
            ("attribution_window", attribution_window),
        ):
            if value:
                errors.append(
                    AdcpError(
                        "UNSUPPORTED_FEATURE",
                        f"{name} is not offered; totals are returned without it.",
                        field=name,
                    )
                )
        payload = delivery_wire.delivery_payload(
            report,
            include_package_daily=include_package_daily_breakdown,
            granularity=time_granularity if include_window_breakdown else None,
        )
        if errors:
            payload["errors"] = [e.to_adcp() for e in errors]
        return ok(payload)

    @mcp.tool(name="get_media_buy_report", annotations=READ_ONLY, output_schema=None)
    @shaped
    async def get_media_buy_report(
        media_buy_id: Annotated[str, Field(min_length=1)],
        start_date: Annotated[str | None, Field(description="YYYY-MM-DD (UTC).")] = None,
        end_date: Annotated[str | None, Field(description="YYYY-MM-DD (UTC), inclusive.")] = None,
        dimensions: Annotated[
            list[str] | None,
            Field(description=f"Group rows by: {', '.join(REPORT_DIMENSIONS)} (default date)."),
        ] = None,
        metrics: Annotated[
            list[str] | None,
            Field(description=f"Columns: {', '.join(REPORT_METRICS)} (default all)."),
        ] = None,
    ) -> ToolResult:
        """Detailed performance report for one media buy (seed-003): rows grouped by the
        requested dimensions with the requested metrics, next to the standard
        get_media_buy_delivery figures. Example: {media_buy_id: 'mb_…', dimensions:
        ['date', 'package'], metrics: ['impressions', 'spend', 'ctr']}."""
        caller = current_caller()
        dims = list(dimensions or ["date"])
        wanted = list(metrics or REPORT_METRICS)
        check_names(dims, REPORT_DIMENSIONS, "dimensions")
        check_names(wanted, REPORT_METRICS, "metrics")
        report = await delivery_reports.report(
            state,
            caller,
            delivery_reports.ReportQuery(
                media_buy_ids=[media_buy_id],
                start_date=_day(start_date, "start_date"),
                end_date=_day(end_date, "end_date"),
                hourly="hour" in dims,
            ),
        )
        if not report.buys:
            raise AdcpError(
                "MEDIA_BUY_NOT_FOUND",
                f"Media buy '{media_buy_id}' was not found.",
                field="media_buy_id",
            )
        rows, totals = _report_rows(report, dims, wanted)
        payload = delivery_wire.delivery_payload(
            report, include_package_daily="package" in dims, granularity=None
        )
        payload["report"] = {
            "media_buy_id": media_buy_id,
            "start_date": report.start.date().isoformat(),
            "end_date": (report.end - timedelta(seconds=1)).date().isoformat(),
            "dimensions": dims,
            "metrics": wanted,
            "rows": rows,
            "totals": totals,
        }
        return ok(payload)

    feedback.register(mcp, state)
